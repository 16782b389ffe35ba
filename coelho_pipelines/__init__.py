"""Coelho: real-time MLOps on Dagster, Kafka, Delta Lake, River, CatBoost, MLflow and FastAPI."""

import os

# The platform runs offline and never phones home: MLflow's client telemetry would start a
# background sender (a thread per process, requests to an outside host that fail here) and has
# raced with `os.environ` reads inside `create_run`. Set the variable to "false" to opt in.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
