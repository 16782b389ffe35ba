"""Constants and helpers shared by the UI tests and their fixtures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
UI_DIR = REPO_ROOT / "coelho_serving" / "ui"
SCREENSHOTS = Path(__file__).parent / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REDIS_DB = 12
EVENTS_PER_USE_CASE = 1500
FIRST_LEARN, SECOND_LEARN = 300, 600
PLOTTED = "eta"
API_KEY = "ui-tests-key"  # the keyed API server of the browser tests


def screenshot(page: Any, name: str) -> Path:
    """A full-page screenshot under tests/ui/screenshots (git-ignored)."""
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.evaluate("window.scrollTo(0, 0)")  # the sticky navigation stays on top
    page.screenshot(path=str(path), full_page=True)
    return path
