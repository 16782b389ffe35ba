"""Snapshots of the incremental learner in MLflow: the source of truth for resuming.

One MLflow run per use case holds the learner's whole history: it is named after the River
model (`spec.river_model_name`) in the use case's experiment, tagged
`coelho.paradigm=incremental`, and every learner run (Dagster run) resumes it, so metric
histories continue with step = events learned. (Choice: resume the run rather than open one
per Dagster run; the latest Dagster run id is the tag `naming.MLFLOW_DAGSTER_RUN_TAG`.)

A snapshot is two signed pickles, `bundle.pkl` (`learner.LiveModel`: model + feature
pipeline) and `progress.pkl` (`learner.Progress`: metrics, drift detector, analytics, Kafka
offsets, counters), taken at the same event boundary. Snapshots alternate between two
artifact directories, `snapshot/slot-0` and `snapshot/slot-1`, so a crash during an upload
never damages the previous snapshot; the tag `coelho.snapshot` (JSON: slot, events_learned,
offsets, written_at) is written only after the upload completes and is the commit point.
Kafka offsets are committed to the consumer group after that (for lag monitoring only).

No Dagster import here: the API uses `load_latest_snapshot` as its fallback model source.
"""

from __future__ import annotations

import json
import pickle
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coelho_pipelines import signing
from coelho_pipelines.naming import MLFLOW_DAGSTER_RUN_TAG as DAGSTER_RUN_TAG
from coelho_pipelines.naming import MLFLOW_PARADIGM_TAG as PARADIGM_TAG
from coelho_pipelines.naming import MLFLOW_USE_CASE_TAG as USE_CASE_TAG
from coelho_pipelines.use_cases.spec import UseCaseSpec

SNAPSHOT_TAG = "coelho.snapshot"
LAST_DRIFT_TAG = "coelho.last_drift"
SNAPSHOT_DIR = "snapshot"
BUNDLE_FILE = "bundle.pkl"
PROGRESS_FILE = "progress.pkl"


class SnapshotError(RuntimeError):
    """A snapshot is missing, inconsistent or fails its signature check."""


@dataclass(frozen=True)
class SnapshotInfo:
    """What the `coelho.snapshot` tag says about the latest durable snapshot."""

    slot: int
    events_learned: int
    offsets: dict[int, int]
    written_at: str
    model_version: int = 0

    def to_json(self) -> str:
        return json.dumps(
            {
                "slot": self.slot,
                "events_learned": self.events_learned,
                "offsets": {str(p): o for p, o in sorted(self.offsets.items())},
                "written_at": self.written_at,
                "model_version": self.model_version,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> SnapshotInfo:
        data = json.loads(text)
        return cls(
            slot=int(data["slot"]),
            events_learned=int(data["events_learned"]),
            offsets={int(p): int(o) for p, o in data.get("offsets", {}).items()},
            written_at=str(data.get("written_at", "")),
            model_version=int(data.get("model_version", 0)),
        )


@dataclass
class LoadedSnapshot:
    run_id: str
    info: SnapshotInfo
    bundle: Any  # learner.LiveModel
    progress: Any | None  # learner.Progress (None when only the bundle was loaded)


def slot_path(slot: int) -> str:
    return f"{SNAPSHOT_DIR}/slot-{slot}"


def write_state_files(directory: Path, bundle_blob: bytes, progress_blob: bytes | None) -> None:
    """Write signed blobs as `bundle.pkl` / `progress.pkl` (atomically, by rename)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, blob in ((BUNDLE_FILE, bundle_blob), (PROGRESS_FILE, progress_blob)):
        if blob is None:
            continue
        tmp = directory / f".{name}.tmp"
        tmp.write_bytes(blob)
        tmp.replace(directory / name)


class SnapshotStore:
    """The learner's MLflow run: find/resume it, write and load snapshots, log metrics."""

    def __init__(self, tracking_uri: str, spec: UseCaseSpec, experiment: str | None = None):
        from mlflow import MlflowClient

        self.spec = spec
        self.experiment = experiment or spec.experiment
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        self._experiment_id: str | None = None

    @property
    def experiment_id(self) -> str:
        if self._experiment_id is None:
            found = self.client.get_experiment_by_name(self.experiment)
            if found is None:
                try:
                    self._experiment_id = self.client.create_experiment(self.experiment)
                except Exception:
                    found = self.client.get_experiment_by_name(self.experiment)
                    if found is None:
                        raise
                    self._experiment_id = found.experiment_id
            else:
                self._experiment_id = found.experiment_id
        return self._experiment_id

    def find_run(self) -> Any | None:
        """The learner's run (the latest one if several), or None."""
        found = self.client.get_experiment_by_name(self.experiment)
        if found is None:
            return None
        self._experiment_id = found.experiment_id
        runs = self.client.search_runs(
            [found.experiment_id],
            filter_string=(
                f"tags.`{PARADIGM_TAG}` = 'incremental' "
                f"and attributes.run_name = '{self.spec.river_model_name}'"
            ),
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        return runs[0] if runs else None

    def open_run(self, dagster_run_id: str | None = None) -> str:
        """Resume the learner's run (or create it), mark it RUNNING; returns its id."""
        run = self.find_run()
        if run is None:
            run = self.client.create_run(
                self.experiment_id,
                run_name=self.spec.river_model_name,
                tags={PARADIGM_TAG: "incremental", USE_CASE_TAG: self.spec.key},
            )
        run_id = run.info.run_id
        if run.info.status != "RUNNING":
            self.client.update_run(run_id, status="RUNNING")
        if dagster_run_id:
            self.client.set_tag(run_id, DAGSTER_RUN_TAG, dagster_run_id)
        return run_id

    def finish(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status=status)

    def snapshot_info(self, run: Any) -> SnapshotInfo | None:
        raw = run.data.tags.get(SNAPSHOT_TAG)
        return SnapshotInfo.from_json(raw) if raw else None

    def write(self, run_id: str, directory: Path, info: SnapshotInfo) -> None:
        """Upload a snapshot directory to its slot, then commit it with the tag."""
        self.client.log_artifacts(run_id, str(directory), artifact_path=slot_path(info.slot))
        self.client.set_tag(run_id, SNAPSHOT_TAG, info.to_json())

    def log_metrics(self, run_id: str, step: int, values: dict[str, float]) -> None:
        from mlflow.entities import Metric

        timestamp = int(time.time() * 1000)
        batch = [Metric(k, float(v), timestamp, step) for k, v in values.items()]
        if batch:
            self.client.log_batch(run_id, metrics=batch, synchronous=True)

    def load_latest(self, bundle_only: bool = False) -> LoadedSnapshot | None:
        """The latest durable snapshot (falling back to the other slot if it is unreadable)."""
        run = self.find_run()
        info = None if run is None else self.snapshot_info(run)
        if info is None:
            return None
        errors = []
        for slot in (info.slot, 1 - info.slot):
            try:
                return self._load_slot(run.info.run_id, slot, info, bundle_only)
            except (OSError, SnapshotError, signing.SignatureError, pickle.UnpicklingError) as exc:
                errors.append(f"slot {slot}: {exc}")
            except Exception as exc:  # noqa: BLE001 - e.g. MlflowException for a missing slot
                errors.append(f"slot {slot}: {exc}")
        raise SnapshotError("no readable snapshot: " + "; ".join(errors))

    def _load_slot(
        self, run_id: str, slot: int, info: SnapshotInfo, bundle_only: bool
    ) -> LoadedSnapshot:
        names = [BUNDLE_FILE] if bundle_only else [BUNDLE_FILE, PROGRESS_FILE]
        with tempfile.TemporaryDirectory(prefix="coelho-snapshot-") as tmp:
            loaded = {}
            for name in names:
                local = self.client.download_artifacts(run_id, f"{slot_path(slot)}/{name}", tmp)
                loaded[name] = signing.loads(Path(local).read_bytes())
        bundle = loaded[BUNDLE_FILE]
        progress = loaded.get(PROGRESS_FILE)
        if progress is not None:
            if bundle.events_learned != progress.events_learned:
                raise SnapshotError(f"slot {slot}: model and progress are from different events")
            info = SnapshotInfo(
                slot=slot,
                events_learned=progress.events_learned,
                offsets=dict(progress.offsets),
                written_at=info.written_at if slot == info.slot else "",
                model_version=progress.model_version,
            )
        elif slot != info.slot:
            info = SnapshotInfo(slot, bundle.events_learned, {}, "")
        return LoadedSnapshot(run_id, info, bundle, progress)


def load_latest_snapshot(
    tracking_uri: str, spec: UseCaseSpec, bundle_only: bool = True, experiment: str | None = None
) -> LoadedSnapshot | None:
    """Reader for the API: the latest snapshot's model bundle (`.bundle.predict(event)`)."""
    return SnapshotStore(tracking_uri, spec, experiment).load_latest(bundle_only=bundle_only)
