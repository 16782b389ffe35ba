"""Blocking asset checks of the batch graph.

- `<uc>/training_set` `split_is_sound`: splits disjoint, in time order, non-empty, and no
  never-feature (ids, label, generating factors) among the features (leakage guard).
- `<uc>/batch_evaluation` `beats_champion`: the new model beats the registered champion on
  the same test split by the use case's primary metric; when it fails, `<uc>/champion_model`
  is not materialized and the registry is untouched.
"""

import re
from typing import Any

import dagster as dg

from coelho_pipelines import naming
from coelho_pipelines.batch import training_set as ts
from coelho_pipelines.batch.lineage import (
    BATCH_EVALUATION,
    TRAINING_SET,
    asset_key,
    upstream_metadata,
)
from coelho_pipelines.resources import LakehouseResource, MlflowResource
from coelho_pipelines.use_cases.spec import UseCaseSpec


def leaked_features(spec: UseCaseSpec) -> list[str]:
    """Names that must never be features (ids, label, generating factors) but are: as a
    feature's or profile value's name, or as a column its SQL reads (the leakage guard)."""
    forbidden = set(spec.never_features) | {spec.id_field, spec.key_field}
    if spec.label_field:
        forbidden.add(spec.label_field)
    features = {*spec.features, *spec.model_features}
    used = {f.name for f in features}
    used |= {token for f in features for token in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", f.sql)}
    return sorted(forbidden & used)


def split_problems(spec: UseCaseSpec, splits: dict[str, Any]) -> list[str]:
    """What is wrong with a train / validation / test split (empty list: nothing)."""
    problems = []
    key, unit = (spec.profile.key_field, "customers") if spec.profile else (spec.id_field, "events")
    ids = {name: set(frame[key]) for name, frame in splits.items()}
    for a, b in (("train", "validation"), ("train", "test"), ("validation", "test")):
        shared = len(ids[a] & ids[b])
        if shared:
            problems.append(f"{shared} {unit} in both {a} and {b}")
    for name, frame in splits.items():
        if frame.empty:
            problems.append(f"{name} split is empty")
    order = [splits[name] for name in ts.SPLITS if not splits[name].empty]
    for earlier, later in zip(order, order[1:], strict=False):
        if earlier[spec.time_field].max() > later[spec.time_field].min():
            problems.append("splits overlap in time")
    leaked = leaked_features(spec)
    if leaked:
        problems.append(f"never-features used as features: {', '.join(leaked)}")
    return problems


def build_batch_checks(spec: UseCaseSpec) -> list[dg.AssetChecksDefinition]:
    @dg.asset_check(
        asset=asset_key(spec, TRAINING_SET),
        name="split_is_sound",
        blocking=True,
        description="Train / validation / test are disjoint, non-empty and in time order, and "
        "no id, label or generating factor is a feature.",
    )
    def split_is_sound(
        context: dg.AssetCheckExecutionContext, lakehouse: LakehouseResource
    ) -> dg.AssetCheckResult:
        metadata = upstream_metadata(context, spec, TRAINING_SET)
        uri = lakehouse.table_uri(naming.training_set_table_name(spec))
        splits = ts.read_splits(
            uri, int(metadata["delta_version"]), lakehouse.storage_options, spec.time_field
        )
        problems = split_problems(spec, splits)
        return dg.AssetCheckResult(
            passed=not problems,
            severity=dg.AssetCheckSeverity.ERROR,
            description="; ".join(problems) or "sound",
            metadata={f"{name}_rows": len(frame) for name, frame in splits.items()},
        )

    @dg.asset_check(
        asset=asset_key(spec, BATCH_EVALUATION),
        name="beats_champion",
        blocking=True,
        description=f"The new model beats the `champion` of {spec.registered_model} on the same "
        f"test split by {spec.batch_primary.name} ({spec.batch_primary.direction}).",
    )
    def beats_champion(
        context: dg.AssetCheckExecutionContext,
        lakehouse: LakehouseResource,
        mlflow: MlflowResource,
    ) -> dg.AssetCheckResult:
        from coelho_pipelines.batch.champion import compare_with_champion

        evaluation = upstream_metadata(context, spec, BATCH_EVALUATION)
        uri = lakehouse.table_uri(naming.training_set_table_name(spec))
        test = ts.read_splits(
            uri, int(evaluation["training_set_version"]), lakehouse.storage_options,
            spec.time_field,
        )["test"]  # fmt: skip
        candidate = evaluation.get(spec.batch_primary.name)
        comparison = compare_with_champion(
            mlflow.tracking_uri, spec, str(evaluation["run_id"]),
            None if candidate is None else float(candidate), test,
        )  # fmt: skip
        context.log.info(comparison.reason)
        return dg.AssetCheckResult(
            passed=comparison.promote or comparison.already_champion,
            severity=dg.AssetCheckSeverity.ERROR,
            description=comparison.reason,
            metadata=comparison.as_metadata(),
        )

    return [split_is_sound, beats_champion]
