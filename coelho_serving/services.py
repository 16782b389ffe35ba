"""What the endpoints do: read Redis, MLflow and the lakehouse through the pipeline modules.

No Dagster here. The modules that own the data formats do the reading (`incremental.live_store`
and `incremental.snapshot` for the learner's state, `batch.registry` for batch models,
`sql_engine` for SQL); this layer adds caching, fallbacks, error mapping and metrics. Every
blocking call runs in a worker thread; predictions on a cached model run inline (sub-ms).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import HTTPException

from coelho_pipelines import telemetry
from coelho_pipelines.use_cases.spec import UseCaseSpec
from coelho_serving import schemas
from coelho_serving.batching import MicroBatcher
from coelho_serving.cache import CachedModel, ModelCache
from coelho_serving.config import ServingConfig
from coelho_serving.health import (
    HealthChecker,
    check_kafka,
    check_lakehouse,
    check_mlflow,
    check_redis,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
NO_MODEL = "no model trained yet"
_PLOT_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_MODEL_ERRORS = (ArithmeticError, KeyError, TypeError, ValueError)


def _redis_errors() -> tuple[type[BaseException], ...]:
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return (RedisConnectionError, RedisTimeoutError, OSError)


def unavailable(dependency: str, error: BaseException) -> HTTPException:
    first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
    return HTTPException(503, f"{dependency} is unavailable: {first_line}")


def _mlflow_unavailable(error: BaseException) -> bool:
    """Whether an exception from the MLflow client means the server could not be reached."""
    import requests

    if isinstance(error, requests.exceptions.RequestException | ConnectionError | TimeoutError):
        return True
    text = str(error)
    return "Max retries exceeded" in text or "Connection refused" in text


def storage_options() -> dict[str, str]:
    """Object-store options for the lakehouse: `COELHO_STORAGE_<OPTION>` variables."""
    import os

    return {
        key.removeprefix("COELHO_STORAGE_").lower(): value
        for key, value in os.environ.items()
        if key.startswith("COELHO_STORAGE_")
    }


class Services:
    """The app's shared state: configuration, clients, the model cache and the areas."""

    def __init__(self, config: ServingConfig, specs: Sequence[UseCaseSpec]) -> None:
        self.config = config
        self.specs = {spec.key: spec for spec in specs}
        self.cache = ModelCache()
        self._redis: Any = None
        self._redis_down_until = 0.0
        self.incremental = IncrementalService(self)
        self.batch = BatchService(self)
        self.sql = SqlService(self)
        self.health = HealthChecker(
            config,
            {
                "kafka": lambda: check_kafka(config),
                "redis": lambda: check_redis(config, self.redis()),
                "mlflow": lambda: check_mlflow(config),
                "lakehouse": lambda: check_lakehouse(config, storage_options()),
            },
        )

    @property
    def tracking_uri(self) -> str:
        return self.config.settings.mlflow_tracking_uri

    def redis(self) -> Any:
        """One shared Redis client (thread-safe connection pool) with short timeouts."""
        if self._redis is None:
            import redis

            self._redis = redis.Redis.from_url(
                self.config.settings.redis_url,
                socket_connect_timeout=self.config.dependency_timeout_seconds,
                socket_timeout=self.config.dependency_timeout_seconds,
            )
        return self._redis

    async def in_thread(self, func: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(func, *args)

    async def redis_call(self, func: Callable[..., T], *args: Any) -> T:
        """`func(redis_client, *args)` in a thread; Redis outages become 503."""
        try:
            result = await asyncio.to_thread(func, self.redis(), *args)
        except _redis_errors() as error:
            self.mark_redis_down()
            raise unavailable("Redis", error) from error
        self._redis_down_until = 0.0
        return result

    def redis_suspect(self) -> bool:
        """True shortly after a Redis failure: skip it instead of waiting on timeouts."""
        return time.monotonic() < self._redis_down_until

    def mark_redis_down(self) -> None:
        self._redis_down_until = time.monotonic() + self.config.redis_retry_seconds

    async def mlflow_call(self, func: Callable[..., T], *args: Any) -> T:
        """A blocking MLflow call in a thread; an unreachable server becomes 503."""
        try:
            return await asyncio.to_thread(func, *args)
        except HTTPException:
            raise
        except Exception as error:
            if _mlflow_unavailable(error):
                raise unavailable("MLflow", error) from error
            raise

    async def health_report(self) -> tuple[dict[str, Any], bool]:
        body, healthy = await self.health.report()
        body["models"] = self.serving_state()
        return body, healthy

    def serving_state(self) -> dict[str, Any]:
        """Which model each prediction endpoint last served from (the cache, no I/O)."""
        state: dict[str, Any] = {}
        for key in self.specs:
            entry = self.incremental.last_served.get(key)
            champion = self.cache.peek((key, "batch", "champion"))
            state[key] = {
                "incremental": None
                if entry is None
                else {"source": entry[0], "version": str(entry[1])},
                "batch": None
                if champion is None
                else {"source": "mlflow", "version": str(champion.version)},
            }
        return state

    @asynccontextmanager
    async def lifespan(self, _app: Any):  # noqa: ANN201
        yield
        if self._redis is not None:
            self._redis.close()


def _spec_feature(spec: UseCaseSpec, feature: str) -> str:
    if feature not in spec.categorical_features:
        raise HTTPException(
            404,
            f"unknown categorical feature {feature!r} for {spec.key}; "
            f"valid: {', '.join(spec.categorical_features)}",
        )
    return feature


def _cluster_body(spec: UseCaseSpec, analytics: dict[str, Any], feature: str | None) -> dict:
    """`{samples_per_cluster}` or `{feature, clusters: {cluster: {value: count}}}`."""
    if feature is None:
        return {"use_case": spec.key, "samples_per_cluster": analytics["samples_per_cluster"]}
    feature = _spec_feature(spec, feature)
    return {
        "use_case": spec.key,
        "feature": feature,
        "clusters": analytics.get("features", {}).get(feature, {}),
    }


class IncrementalService:
    """The River learner's live model (Redis) with its MLflow snapshot as fallback."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.last_served: dict[str, tuple[str, Any]] = {}

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
            return loaded[1]

        try:
            return await services.cache.get(
                (spec.key, "live"),
                use_case=spec.key,
                source="live",
                max_age=services.config.live_check_seconds,
                probe=lambda: live_store.live_model_version(client, spec.key),
                load=load,
            )
        except _redis_errors() as error:
            services.mark_redis_down()
            log.warning("Redis unavailable, falling back to the MLflow snapshot: %s", error)
        except SignatureError as error:
            log.error("refusing the live %s model from Redis: %s", spec.key, error)
        except LookupError as error:
            log.warning("%s: %s", spec.key, error)
        return None

    async def _snapshot(self, spec: UseCaseSpec) -> CachedModel | None:
        from coelho_pipelines.incremental import snapshot

        store = snapshot.SnapshotStore(self.services.tracking_uri, spec)

        def probe() -> str | None:
            run = store.find_run()
            info = None if run is None else store.snapshot_info(run)
            return None if info is None else f"{run.info.run_id}@{info.events_learned}"

        def load(_version: str) -> Any:
            loaded = store.load_latest(bundle_only=True)
            if loaded is None:
                raise snapshot.SnapshotError("the snapshot disappeared from MLflow")
            return loaded.bundle

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
            if _mlflow_unavailable(error):
                raise unavailable("MLflow (and no live model in Redis)", error) from error
            raise
        if snap is None:
            raise HTTPException(503, f"{NO_MODEL} for {spec.key}")
        return snap, "mlflow"

    async def predict(self, spec: UseCaseSpec, event: dict[str, Any]) -> dict[str, Any]:
        entry, source = await self.model(spec)
        label = "live" if source == "live" else "snapshot"
        try:
            fields = entry.model.predict(event)
        except _MODEL_ERRORS as error:
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
        return status

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
            _spec_feature(spec, feature)
        analytics = await self._state(live_store.read_clusters, spec, "cluster analytics")
        return _cluster_body(spec, analytics, feature)

    async def sample(self, spec: UseCaseSpec) -> dict[str, Any]:
        from coelho_pipelines.incremental import live_store

        return await self._state(live_store.random_sample, spec, "recent events")


def _int(value: str | None) -> int | str | None:
    try:
        return None if value is None else int(value)
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


class BatchService:
    """Batch models from the MLflow registry: the champion or a given run."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.batcher = MicroBatcher()
        self._pngs: dict[tuple[str, str, str], bytes] = {}

    async def runs(self, spec: UseCaseSpec) -> dict[str, Any]:
        from coelho_pipelines.batch import registry

        runs = await self.services.mlflow_call(
            registry.list_runs_best_first, self.services.tracking_uri, spec
        )
        champion = next((run for run in runs if run.get("champion")), None)
        return {
            "use_case": spec.key,
            "primary_metric": {
                "name": spec.batch_primary.name,
                "direction": spec.batch_primary.direction,
            },
            "champion_run_id": None if champion is None else champion["run_id"],
            "runs": runs,
        }

    def _run(self, spec: UseCaseSpec, run_id: str) -> Any:
        """The MLflow run, if it is a batch run of this use case; else 404 naming it."""
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        from coelho_pipelines.batch import registry

        client = MlflowClient(tracking_uri=self.services.tracking_uri)
        not_found = HTTPException(404, f"unknown run {run_id!r} for {spec.key}")
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", run_id):
            raise not_found
        try:
            run = client.get_run(run_id)
        except MlflowException as error:
            if _mlflow_unavailable(error):
                raise
            raise not_found from error
        experiment = client.get_experiment(run.info.experiment_id)
        if (
            experiment.name != spec.experiment
            or run.data.tags.get(registry.PARADIGM_TAG) != "batch"
        ):
            raise not_found
        return run

    async def _model(self, spec: UseCaseSpec, run_id: str | None) -> tuple[CachedModel, str]:
        from coelho_pipelines.batch import registry

        services = self.services
        uri = services.tracking_uri
        if run_id is None:
            entry = await self._cached_champion(spec, self._champion_probe(spec))
            if entry is None:
                raise HTTPException(503, f"{NO_MODEL} for {spec.key} (no champion registered)")
            return entry, "champion"
        await services.mlflow_call(self._run, spec, run_id)

        def load_run() -> Any:
            try:
                return registry.load_run_model(uri, run_id)
            except KeyError as error:
                raise HTTPException(404, f"run {run_id!r} of {spec.key} has no model") from error

        entry = await services.cache.get_immutable(
            (spec.key, "batch", "run", run_id), use_case=spec.key, source="run", load=load_run
        )
        return entry, "run"

    async def _cached_champion(
        self, spec: UseCaseSpec, probe: Callable[[], str | None]
    ) -> CachedModel | None:
        from coelho_pipelines.batch import registry

        uri = self.services.tracking_uri
        try:
            return await self.services.cache.get(
                (spec.key, "batch", "champion"),
                use_case=spec.key,
                source="champion",
                max_age=self.services.config.mlflow_check_seconds,
                probe=probe,
                load=lambda version: registry.load_model(
                    uri, f"models:/{spec.registered_model}/{version}"
                ),
            )
        except Exception as error:
            if _mlflow_unavailable(error):
                raise unavailable("MLflow", error) from error
            raise

    async def predict(
        self, spec: UseCaseSpec, event: dict[str, Any], run_id: str | None = None
    ) -> dict[str, Any]:
        from coelho_pipelines.batch import registry

        entry, label = await self._model(spec, run_id)
        column = "probability" if spec.task == "classification" else "prediction"

        def score(events: Sequence[dict[str, Any]]) -> list[Any]:
            return registry.predict_frame(entry.model, spec, events)[column].tolist()

        key = (spec.key, label, run_id or entry.version)
        try:
            output = await self.batcher.submit(key, score, event)
        except _MODEL_ERRORS as error:
            telemetry.API_PREDICTION_ERRORS.labels(spec.key, label).inc()
            raise HTTPException(422, f"the model could not score this event: {error}") from error
        telemetry.API_PREDICTIONS.labels(spec.key, label).inc()
        version = entry.version if run_id is None else run_id
        return schemas.prediction_body(spec, output, "mlflow", version)

    async def run_metrics(self, spec: UseCaseSpec, run_id: str) -> dict[str, Any]:
        run = await self.services.mlflow_call(self._run, spec, run_id)
        return {
            "use_case": spec.key,
            "run_id": run.info.run_id,
            "run_name": run.info.run_name,
            "primary_metric": {
                "name": spec.batch_primary.name,
                "direction": spec.batch_primary.direction,
                "value": run.data.metrics.get(spec.batch_primary.name),
            },
            "metrics": dict(run.data.metrics),
        }

    def _list_plots(self, spec: UseCaseSpec, run_id: str) -> list[dict[str, str]]:
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=self.services.tracking_uri)
        plots = []
        for tab in client.list_artifacts(run_id, "visualizations"):
            if not tab.is_dir:
                continue
            for item in client.list_artifacts(run_id, tab.path):
                if item.is_dir or not item.path.endswith(".png"):
                    continue
                tab_name = tab.path.rsplit("/", 1)[-1]
                name = item.path.rsplit("/", 1)[-1].removesuffix(".png")
                plots.append(
                    {
                        "tab": tab_name,
                        "name": name,
                        "path": f"/api/v1/batch/{spec.key}/runs/{run_id}/visualizations/"
                        f"{tab_name}/{name}",
                    }
                )
        return plots

    async def visualizations(self, spec: UseCaseSpec, run_id: str) -> dict[str, Any]:
        await self.services.mlflow_call(self._run, spec, run_id)
        plots = await self.services.mlflow_call(self._list_plots, spec, run_id)
        return {"use_case": spec.key, "run_id": run_id, "visualizations": plots}

    def _download_png(self, run_id: str, tab: str, name: str) -> bytes | None:
        import tempfile
        from pathlib import Path

        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        client = MlflowClient(tracking_uri=self.services.tracking_uri)
        with tempfile.TemporaryDirectory(prefix="coelho-plot-") as tmp:
            try:
                local = client.download_artifacts(run_id, f"visualizations/{tab}/{name}.png", tmp)
            except (MlflowException, OSError) as error:
                if _mlflow_unavailable(error):
                    raise
                return None
            return Path(local).read_bytes()

    async def visualization(self, spec: UseCaseSpec, run_id: str, tab: str, name: str) -> bytes:
        if tab not in spec.plot_tabs:
            raise HTTPException(
                404, f"unknown tab {tab!r} for {spec.key}; valid: {', '.join(spec.plot_tabs)}"
            )
        name = name.removesuffix(".png")
        if not _PLOT_NAME.fullmatch(name) or ".." in name:
            raise HTTPException(404, f"no visualization {tab}/{name!r} in run {run_id!r}")
        key = (run_id, tab, name)
        if key not in self._pngs:
            await self.services.mlflow_call(self._run, spec, run_id)
            png = await self.services.mlflow_call(self._download_png, run_id, tab, name)
            if png is None:
                raise HTTPException(404, f"no visualization {tab}/{name} in run {run_id!r}")
            if len(self._pngs) >= 64:
                self._pngs.pop(next(iter(self._pngs)))
            self._pngs[key] = png
        return self._pngs[key]

    async def clusters(self, spec: UseCaseSpec, feature: str | None = None) -> dict[str, Any]:
        """Samples per cluster of the champion over its training set (and value counts)."""
        if feature is not None:
            _spec_feature(spec, feature)
        entry = await self._cached_champion(spec, self._champion_probe(spec))
        if entry is None:
            raise HTTPException(503, f"{NO_MODEL} for {spec.key} (no champion registered)")
        key = (spec.key, "batch", "clusters", entry.version)
        analytics = await self.services.cache.get_immutable(
            key,
            use_case=spec.key,
            source="clusters",
            load=lambda: self._cluster_analytics(spec, entry),
        )
        return {
            "model_version": str(entry.version),
            **_cluster_body(spec, analytics.model, feature),
        }

    def _champion_probe(self, spec: UseCaseSpec) -> Callable[[], str | None]:
        from coelho_pipelines.batch import registry

        uri = self.services.tracking_uri

        def probe() -> str | None:
            version = registry.champion_version(registry.client(uri), spec)
            return None if version is None else str(version.version)

        return probe

    def _cluster_analytics(self, spec: UseCaseSpec, entry: CachedModel) -> dict[str, Any]:
        """Cluster counts of the champion's predictions over the training set it was fit on."""
        import pandas as pd

        from coelho_pipelines.batch import registry, training_set

        client = registry.client(self.services.tracking_uri)
        version = client.get_model_version(spec.registered_model, str(entry.version))
        params = client.get_run(version.run_id).data.params
        uri = params.get("training_set_uri")
        if not uri:
            raise HTTPException(404, f"the champion run of {spec.key} names no training set")
        splits = training_set.read_splits(
            uri, int(params["training_set_version"]), storage_options()
        )
        frame = pd.concat(list(splits.values()), ignore_index=True)
        clusters = entry.model.predict_frame(frame)["prediction"].astype(int)
        analytics: dict[str, Any] = {
            "samples_per_cluster": {
                str(c): int(n) for c, n in sorted(clusters.value_counts().items())
            },
            "features": {},
        }
        for name in spec.categorical_features:
            values = frame[name].astype(object).where(frame[name].notna(), "null").astype(str)
            counts = pd.crosstab(clusters, values)
            analytics["features"][name] = {
                str(c): {
                    str(v): int(n) for v, n in row[row > 0].sort_values(ascending=False).items()
                }
                for c, row in counts.iterrows()
            }
        return analytics


@dataclass(frozen=True)
class Lakehouse:
    """The lakehouse root and its object-store options (what `sql_engine` reads)."""

    uri: str
    storage_options: dict[str, str]


class SqlService:
    """Read-only SQL over a use case's raw Delta table through `sql_engine`."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def _lakehouse(self) -> Lakehouse:
        return Lakehouse(self.services.config.settings.lakehouse_uri, storage_options())

    async def query(self, spec: UseCaseSpec, query: str, limit: int) -> dict[str, Any]:
        from coelho_pipelines import sql_engine

        started = time.perf_counter()
        try:
            result = await asyncio.to_thread(
                sql_engine.run_query, self._lakehouse(), spec, query, limit
            )
        except sql_engine.SqlRejected as error:
            telemetry.API_SQL_ERRORS.labels(spec.key).inc()
            raise HTTPException(400, str(error)) from error
        except sql_engine.TableNotFound as error:
            telemetry.API_SQL_ERRORS.labels(spec.key).inc()
            raise HTTPException(404, f"{spec.key}: {error}") from error
        finally:
            telemetry.API_SQL_DURATION.labels(spec.key).observe(time.perf_counter() - started)
        return result.to_dict()

    async def schema(self, spec: UseCaseSpec) -> dict[str, Any]:
        from coelho_pipelines import sql_engine

        try:
            schema = await asyncio.to_thread(sql_engine.table_schema, self._lakehouse(), spec)
        except sql_engine.TableNotFound as error:
            raise HTTPException(404, f"{spec.key}: {error}") from error
        return {
            "table": schema.table,
            "columns": [column["name"] for column in schema.columns],
            "types": [column["type"] for column in schema.columns],
            "row_count": schema.row_count,
        }
