"""MLflow: a small resource over the tracking server (dagster-mlflow's is legacy)."""

from __future__ import annotations

from typing import Any

import dagster as dg
from pydantic import Field

from coelho_pipelines.settings import Settings


class MlflowResource(dg.ConfigurableResource):
    """An MLflow tracking server (and model registry) at `tracking_uri`."""

    tracking_uri: str = Field(description="from MLFLOW_TRACKING_URI")

    @classmethod
    def from_env(cls) -> MlflowResource:
        """Resolved values for code outside Dagster (the CLI); Definitions use `build_resources`."""
        return cls(tracking_uri=Settings.from_env().mlflow_tracking_uri)

    def client(self) -> Any:
        """An `mlflow.MlflowClient` bound to this server (mlflow imported lazily)."""
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def experiment_id(self, name: str) -> str:
        """The id of experiment `name`, created if missing."""
        client = self.client()
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        return client.create_experiment(name)

    def activate(self, experiment: str) -> str:
        """Point the global `mlflow` fluent API at this server and experiment; returns its id."""
        import mlflow

        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        experiment_id = self.experiment_id(experiment)
        mlflow.set_experiment(experiment_id=experiment_id)
        return experiment_id

    def run_url(self, experiment_id: str, run_id: str) -> str:
        return f"{self.tracking_uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
