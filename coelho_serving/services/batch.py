"""The batch area: models from the MLflow registry (the champion or a given run), run metrics,
plots and the champion's cluster analytics. Predictions are micro-batched: in a worker thread,
or inline once a model's calls have proven cheap (`batching.MicroBatcher`)."""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from fastapi import HTTPException

from coelho_pipelines import telemetry
from coelho_pipelines.naming import MLFLOW_PARADIGM_TAG, raw_table_uri
from coelho_pipelines.settings import storage_options_from_env
from coelho_pipelines.use_cases.spec import UseCaseSpec
from coelho_serving import schemas
from coelho_serving.batching import MicroBatcher
from coelho_serving.cache import CachedModel
from coelho_serving.services.common import (
    MODEL_ERRORS,
    NO_MODEL,
    PLOT_NAME,
    cluster_body,
    mlflow_unavailable,
    require_finite,
    spec_feature,
    unavailable,
)

if TYPE_CHECKING:
    from coelho_serving.services import Services


class BatchService:
    """Batch models from the MLflow registry: the champion or a given run."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.batcher = MicroBatcher()
        # model -> its compiled row predictor (`fast_predict`), built once per loaded model
        self._predictors: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
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

        client = MlflowClient(tracking_uri=self.services.tracking_uri)
        not_found = HTTPException(404, f"unknown run {run_id!r} for {spec.key}")
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", run_id):
            raise not_found
        try:
            run = client.get_run(run_id)
        except MlflowException as error:
            if mlflow_unavailable(error):
                raise
            raise not_found from error
        experiment = client.get_experiment(run.info.experiment_id)
        if experiment.name != spec.experiment or run.data.tags.get(MLFLOW_PARADIGM_TAG) != "batch":
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
                return self._prepared(registry.load_run_model(uri, run_id))
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
                load=lambda version: self._prepared(
                    registry.load_model(uri, f"models:/{spec.registered_model}/{version}")
                ),
            )
        except Exception as error:
            if mlflow_unavailable(error):
                raise unavailable("MLflow", error) from error
            raise

    def _prepared(self, model: Any) -> Any:
        """The loaded model, its fast row predictor compiled (in the loading thread)."""
        self._predictor(model)
        return model

    def _predictor(self, model: Any) -> Callable[[Sequence[dict[str, Any]]], list[Any]]:
        """`fast_predict.compile_predictor(model)`, compiled once per model: the outputs of
        `predict_frame` (probability, value or cluster) without pandas on each request."""
        predictor = self._predictors.get(model)
        if predictor is None:
            from coelho_pipelines.accel import fast_predict

            predictor = self._predictors[model] = fast_predict.compile_predictor(model)
        return predictor

    async def predict(
        self, spec: UseCaseSpec, event: dict[str, Any], run_id: str | None = None
    ) -> dict[str, Any]:
        entry, label = await self._model(spec, run_id)
        model = entry.model

        def score(events: Sequence[dict[str, Any]]) -> list[Any]:
            return self._predictor(model)(self._model_rows(spec, list(events)))

        key = (spec.key, label, run_id or entry.version)
        try:
            output = await self.batcher.submit(key, score, event)
        except MODEL_ERRORS as error:
            telemetry.API_PREDICTION_ERRORS.labels(spec.key, label).inc()
            raise HTTPException(422, f"the model could not score this event: {error}") from error
        telemetry.API_PREDICTIONS.labels(spec.key, label).inc()
        version = entry.version if run_id is None else run_id
        return require_finite(schemas.prediction_body(spec, output, "mlflow", version))

    def _model_rows(self, spec: UseCaseSpec, events: list[dict[str, Any]]) -> list[Any]:
        """The model inputs of events: their features, or (a use case that clusters
        customers) each customer's profile from the raw table plus the event."""
        if spec.profile is None:
            return [spec.extract_features(event) for event in events]
        from coelho_pipelines.batch.profiles import serving_rows

        raw_uri = raw_table_uri(self.services.config.settings.lakehouse_uri, spec)
        return serving_rows(spec, events, raw_uri, storage_options_from_env())

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
        return self._download(run_id, f"visualizations/{tab}/{name}.png")

    def _download(self, run_id: str, path: str) -> bytes | None:
        """An artifact's bytes, or None when the run has no such artifact."""
        import tempfile
        from pathlib import Path

        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        client = MlflowClient(tracking_uri=self.services.tracking_uri)
        with tempfile.TemporaryDirectory(prefix="coelho-plot-") as tmp:
            try:
                local = client.download_artifacts(run_id, path, tmp)
            except (MlflowException, OSError) as error:
                if mlflow_unavailable(error):
                    raise
                return None
            return Path(local).read_bytes()

    async def visualization(self, spec: UseCaseSpec, run_id: str, tab: str, name: str) -> bytes:
        if tab not in spec.plot_tabs:
            raise HTTPException(
                404, f"unknown tab {tab!r} for {spec.key}; valid: {', '.join(spec.plot_tabs)}"
            )
        name = name.removesuffix(".png")
        if not PLOT_NAME.fullmatch(name) or ".." in name:
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

    async def comparison(self, spec: UseCaseSpec) -> dict[str, Any]:
        """The latest `<uc>/online_vs_batch` result from MLflow (404 naming why there is none)."""
        from coelho_pipelines.batch import comparison

        found = await self.services.mlflow_call(
            comparison.latest_comparison, self.services.tracking_uri, spec
        )
        if found is None:
            raise HTTPException(
                404,
                f"no online-vs-batch comparison for {spec.key} yet: materialize "
                f"{spec.key}/online_vs_batch (it needs a live model snapshot, a champion and "
                "raw rows new to both; a run without them is skipped and says why)",
            )
        return found

    async def comparison_plot(self, spec: UseCaseSpec) -> bytes:
        """The PNG of the latest comparison."""
        from coelho_pipelines.batch import comparison

        found = await self.comparison(spec)
        key = (found["run_id"], "comparison", comparison.PLOT_ARTIFACT)
        if key not in self._pngs:
            png = await self.services.mlflow_call(
                self._download, found["run_id"], comparison.PLOT_ARTIFACT
            )
            if png is None:
                raise HTTPException(404, f"comparison run {found['run_id']!r} has no plot")
            if len(self._pngs) >= 64:
                self._pngs.pop(next(iter(self._pngs)))
            self._pngs[key] = png
        return self._pngs[key]

    async def clusters(self, spec: UseCaseSpec, feature: str | None = None) -> dict[str, Any]:
        """Samples per cluster of the champion over its training set (and value counts)."""
        if feature is not None:
            spec_feature(spec, feature)
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
            **cluster_body(spec, analytics.model, feature),
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
            uri, int(params["training_set_version"]), storage_options_from_env()
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
