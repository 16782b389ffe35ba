"""The incremental area: the learner's live model (Redis), its MLflow snapshot as fallback,
its status, metrics, cluster analytics and recent events."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import HTTPException

from coelho_pipelines import telemetry
from coelho_pipelines.use_cases.spec import UseCaseSpec
from coelho_serving import schemas
from coelho_serving.accel.frozen import freeze
from coelho_serving.cache import CachedModel
from coelho_serving.services.common import (
    MODEL_ERRORS,
    NO_MODEL,
    T,
    cluster_body,
    log,
    mlflow_unavailable,
    redis_errors,
    require_finite,
    spec_feature,
    unavailable,
)

if TYPE_CHECKING:
    from coelho_serving.services import Services


class IncrementalService:
    """The River learner's live model (Redis) with its MLflow snapshot as fallback."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.last_served: dict[str, tuple[str, Any]] = {}
        self._stores: dict[str, Any] = {}  # use case -> SnapshotStore

    # -- models -------------------------------------------------------------------------
    async def _live(self, spec: UseCaseSpec) -> CachedModel | None:
        from coelho_pipelines.incremental import live_store
        from coelho_pipelines.signing import SignatureError

        services = self.services
        if services.redis_suspect():
            return None
        client = services.redis()

        def load(_version: int) -> Any:
            loaded = live_store.load_live_model(client, spec.key)
            if loaded is None:
                raise LookupError("the live model disappeared from Redis")
            return freeze(loaded[1])

        try:
            return await services.cache.get(
                (spec.key, "live"),
                use_case=spec.key,
                source="live",
                max_age=services.config.live_check_seconds,
                probe=lambda: live_store.live_model_version(client, spec.key),
                load=load,
            )
        except redis_errors() as error:
            services.mark_redis_down()
            log.warning("Redis unavailable, falling back to the MLflow snapshot: %s", error)
        except SignatureError as error:
            log.error("refusing the live %s model from Redis: %s", spec.key, error)
        except LookupError as error:
            log.warning("%s: %s", spec.key, error)
        return None

    def _snapshot_store(self, spec: UseCaseSpec) -> Any:
        """The use case's `SnapshotStore`, made once (an MLflow client is costly to build: it
        was most of a cached snapshot prediction's time when made per request)."""
        from coelho_pipelines.incremental import snapshot

        store = self._stores.get(spec.key)
        if store is None:
            store = self._stores[spec.key] = snapshot.SnapshotStore(
                self.services.tracking_uri, spec
            )
        return store

    async def _snapshot(self, spec: UseCaseSpec) -> CachedModel | None:
        from coelho_pipelines.incremental import snapshot

        store = self._snapshot_store(spec)

        def probe() -> str | None:
            run = store.find_run()
            info = None if run is None else store.snapshot_info(run)
            return None if info is None else f"{run.info.run_id}@{info.events_learned}"

        def load(_version: str) -> Any:
            loaded = store.load_latest(bundle_only=True)
            if loaded is None:
                raise snapshot.SnapshotError("the snapshot disappeared from MLflow")
            return freeze(loaded.bundle)

        return await self.services.cache.get(
            (spec.key, "snapshot"),
            use_case=spec.key,
            source="snapshot",
            max_age=self.services.config.mlflow_check_seconds,
            probe=probe,
            load=load,
        )

    async def model(self, spec: UseCaseSpec) -> tuple[CachedModel, schemas.ModelSource]:
        """The live model, else the latest snapshot, else 503 "no model trained yet"."""
        live = await self._live(spec)
        if live is not None:
            return live, "live"
        from coelho_pipelines.incremental.snapshot import SnapshotError
        from coelho_pipelines.signing import SignatureError

        try:
            snap = await self._snapshot(spec)
        except (SnapshotError, SignatureError) as error:
            log.error("refusing the %s snapshot from MLflow: %s", spec.key, error)
            raise HTTPException(
                503, f"no usable model for {spec.key}: the snapshot was refused ({error})"
            ) from error
        except Exception as error:
            if mlflow_unavailable(error):
                raise unavailable("MLflow (and no live model in Redis)", error) from error
            raise
        if snap is None:
            raise HTTPException(503, f"{NO_MODEL} for {spec.key}")
        return snap, "mlflow"

    async def predict(self, spec: UseCaseSpec, event: dict[str, Any]) -> dict[str, Any]:
        entry, source = await self.model(spec)
        label = "live" if source == "live" else "snapshot"
        try:
            fields = require_finite(entry.model.predict(event))
        except MODEL_ERRORS as error:
            telemetry.API_PREDICTION_ERRORS.labels(spec.key, label).inc()
            raise HTTPException(422, f"the model could not score this event: {error}") from error
        telemetry.API_PREDICTIONS.labels(spec.key, label).inc()
        self.last_served[spec.key] = (source, entry.version)
        return {**fields, "model_source": source, "model_version": str(entry.version)}

    # -- learner state ------------------------------------------------------------------
    async def _state(self, reader: Callable[..., T], spec: UseCaseSpec, what: str) -> T:
        value = await self.services.redis_call(reader, spec.key)
        if value is None:
            raise HTTPException(404, f"no {what} for {spec.key} yet: the learner has not run")
        return value

    async def status(self, spec: UseCaseSpec) -> dict[str, Any]:
        from coelho_pipelines.incremental import live_store

        raw = await self._state(live_store.read_status, spec, "learner status")
        status: dict[str, Any] = {
            "use_case": spec.key,
            "status": raw.get("state"),
            "run_id": raw.get("mlflow_run_id"),
            "events_learned": _int(raw.get("events_learned")),
            "last_update": raw.get("last_update"),
        }
        for name, value in raw.items():
            if name not in ("state", "mlflow_run_id", "events_learned", "last_update"):
                status[name] = _int(value)
        if "decision_threshold" in raw:
            status["decision_threshold"] = _float(raw["decision_threshold"])
        return status

    async def leaderboard(self, spec: UseCaseSpec) -> dict[str, Any]:
        from coelho_pipelines.incremental import live_store

        return await self._state(live_store.read_leaderboard, spec, "leaderboard")

    async def _metrics(self, spec: UseCaseSpec) -> dict[str, Any]:
        from coelho_pipelines.incremental import live_store

        return await self._state(live_store.read_metrics, spec, "metrics")

    async def metrics(self, spec: UseCaseSpec, history: bool = False) -> dict[str, Any]:
        values = await self._metrics(spec)
        body: dict[str, Any] = {
            "use_case": spec.key,
            "primary_metric": {
                "name": spec.river_primary.name,
                "direction": spec.river_primary.direction,
            },
            "metrics": values,
        }
        if history:
            status = await self.status(spec)
            run_id = status.get("run_id")
            body["run_id"] = run_id
            body["history"] = (
                {}
                if not run_id
                else await self.services.mlflow_call(
                    _metric_history, self.services.tracking_uri, run_id, _scalar_names(values)
                )
            )
        return body

    async def report(self, spec: UseCaseSpec) -> dict[str, Any]:
        values = await self._metrics(spec)
        return {
            "use_case": spec.key,
            "confusion_matrix": values.get("ConfusionMatrix"),
            "classification_report": values.get("ClassificationReport"),
        }

    async def clusters(self, spec: UseCaseSpec, feature: str | None = None) -> dict[str, Any]:
        from coelho_pipelines.incremental import live_store

        if feature is not None:
            spec_feature(spec, feature)
        analytics = await self._state(live_store.read_clusters, spec, "cluster analytics")
        return cluster_body(spec, analytics, feature)

    async def sample(self, spec: UseCaseSpec) -> dict[str, Any]:
        from coelho_pipelines.incremental import live_store

        return await self._state(live_store.random_sample, spec, "recent events")


def _int(value: str | None) -> int | str | None:
    try:
        return None if value is None else int(value)
    except ValueError:
        return value


def _float(value: str | None) -> float | str | None:
    try:
        return None if value is None else float(value)
    except ValueError:
        return value


def _scalar_names(values: dict[str, Any]) -> list[str]:
    return [k for k, v in values.items() if isinstance(v, int | float) and not isinstance(v, bool)]


def _metric_history(tracking_uri: str, run_id: str, names: list[str]) -> dict[str, list[dict]]:
    """MLflow history of each metric of a run: [{step, value, timestamp}]."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    return {
        name: [
            {"step": m.step, "value": m.value, "timestamp": m.timestamp}
            for m in client.get_metric_history(run_id, name)
        ]
        for name in names
    }
