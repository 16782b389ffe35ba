"""One `coelho up`/`down` at a time per state directory (a real flock held by a real process)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from coelho.platform import Platform, state_lock
from coelho.platform.process import PlatformError

ROOT = Path(__file__).resolve().parents[2]
HOLD = """
import sys, time
from pathlib import Path
from coelho.platform import state_lock
with state_lock.exclusive(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(120)
"""


def _holder(home: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(home)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "held"
    return process


def test_a_second_up_waits_then_names_the_holder_and_a_killed_holder_frees_it(
    tmp_path: Path,
) -> None:
    holder = _holder(tmp_path)
    try:
        platform = Platform(tmp_path)
        platform.lock_wait_seconds = 0.5
        lines: list[str] = []
        with pytest.raises(PlatformError, match=f"pid {holder.pid}"):
            platform.up([], report=lines.append)
        assert any("waiting for another" in line for line in lines)
        with pytest.raises(PlatformError, match="coelho up"):
            platform.down([], report=lines.append)
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
    assert Platform(tmp_path).up([], report=lambda _line: None) == []  # the OS released it


def test_the_lock_is_reentrant_within_a_process(tmp_path: Path) -> None:
    with (
        state_lock.exclusive(tmp_path, wait_seconds=0.5),
        state_lock.exclusive(tmp_path, wait_seconds=0.5),
    ):
        assert state_lock.lock_path(tmp_path).read_text().strip() == str(os.getpid())
    assert state_lock.lock_path(tmp_path).read_text() == ""  # released and cleared
