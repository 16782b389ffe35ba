"""The MLflow recorder keeps a snapshot's files until its upload ends (pure logic, fake store)."""

from __future__ import annotations

import time
from pathlib import Path

from coelho_pipelines.incremental.capture import Capture
from coelho_pipelines.incremental.outputs import MlflowRecorder
from coelho_pipelines.use_cases import get_spec


def _capture(directory: Path, events: int) -> Capture:
    directory.mkdir()
    (directory / "bundle.pkl").write_bytes(b"bundle")
    capture = Capture(
        directory=directory,
        events_learned=events,
        offsets={0: events},
        model_version=events,
        with_progress=True,
        started=time.monotonic(),
    )
    capture.retain()  # the recorder slot's reference, as the runner takes it
    return capture


class FakeStoreReplacingMidUpload:
    """A stand-in SnapshotStore whose first upload sees a newer snapshot arrive meanwhile."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.recorder: MlflowRecorder | None = None
        self.uploads: list[tuple[int, bool]] = []

    def write(self, run_id: str, directory: Path, info) -> None:
        if not self.uploads:
            newer = _capture(self.tmp_path / "newer", 2000)
            self.recorder.add_snapshot(newer)
        self.uploads.append((info.events_learned, (directory / "bundle.pkl").exists()))


def test_a_replaced_snapshot_keeps_its_files_until_its_upload_ends(tmp_path: Path) -> None:
    store = FakeStoreReplacingMidUpload(tmp_path)
    recorder = MlflowRecorder(get_spec("tfd"), store, run_id="run", slot=0)  # type: ignore[arg-type]
    store.recorder = recorder
    older = _capture(tmp_path / "older", 1000)
    recorder.add_snapshot(older)

    recorder._write_snapshot()  # uploads the older one; the newer one arrives meanwhile
    recorder._write_snapshot()  # then the newer one

    assert store.uploads == [(1000, True), (2000, True)]
    assert not older.directory.exists() and not (tmp_path / "newer").exists()
    assert [info.events_learned for info in recorder.take_durable()] == [1000, 2000]
