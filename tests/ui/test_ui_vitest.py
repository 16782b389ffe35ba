"""The UI's pure logic (form <-> request mapping, formatters, markers, the SSE/polling store with
fake timers) is tested by vitest; `make test` runs it through this test."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
from ui_support import REPO_ROOT, UI_DIR


def test_vitest_passes() -> None:
    if shutil.which("node") is None:
        pytest.fail("node not found: the UI tests need Node.js 20.19+", pytrace=False)
    if not (UI_DIR / "node_modules" / ".package-lock.json").exists():
        subprocess.run([str(REPO_ROOT / "scripts" / "build-ui.sh")], check=True, timeout=900)
    result = subprocess.run(
        ["npx", "vitest", "run", "--reporter=verbose", "--color=false"],
        cwd=UI_DIR,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "NO_COLOR": "1", "CI": "1"},
    )
    output = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
    assert result.returncode == 0, output[-4000:]
    passed = re.search(r"Tests\s+(\d+) passed", output)
    assert passed and int(passed.group(1)) >= 20, output[-2000:]
    assert "failed" not in output.split("Test Files")[-1], output[-2000:]
