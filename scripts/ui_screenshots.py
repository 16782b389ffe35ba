"""Screenshots of the web UI of a running platform (the README's images come from here).

    .venv/bin/python scripts/ui_screenshots.py [--api http://127.0.0.1:8000] [--out docs]

Opens the overview and the tfd incremental page in Debian's chromium (Playwright never
downloads a browser), waits for the charts to draw, and writes `ui-overview.png` and
`ui-tfd-incremental.png`. Run it against `make up` after a few minutes of learning.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
PAGES = {"ui-overview.png": "/ui/", "ui-tfd-incremental.png": "/ui/tfd/incremental"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", default="http://127.0.0.1:8000")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs")
    parser.add_argument("--settle-seconds", type=float, default=4.0)
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} not found: run scripts/install-system-deps.sh", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        for name, path in PAGES.items():
            page.goto(args.api + path, wait_until="load")
            page.wait_for_timeout(args.settle_seconds * 1000)
            page.screenshot(path=str(args.out / name))
            print(f"wrote {args.out / name}")
        browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
