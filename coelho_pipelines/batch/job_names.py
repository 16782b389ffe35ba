"""Names of the batch jobs (public names; importable without Dagster, as the API does)."""

from coelho_pipelines.use_cases.spec import UseCaseSpec


def training_job_name(spec: UseCaseSpec) -> str:
    """`<uc>_batch_training`: retraining from the feature partitions that exist."""
    return f"{spec.key}_batch_training"


def retraining_job_name(spec: UseCaseSpec) -> str:
    """`<uc>_features_and_training`: one feature partition, then retraining."""
    return f"{spec.key}_features_and_training"
