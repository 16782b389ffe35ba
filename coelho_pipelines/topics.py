"""Kafka topics as external assets: the root of every use case's lineage."""

from __future__ import annotations

import dagster as dg

from coelho_pipelines.use_cases.spec import UseCaseSpec


def topic_asset_key(spec: UseCaseSpec) -> dg.AssetKey:
    return dg.AssetKey([spec.asset_prefix, "events_topic"])


def topic_asset(spec: UseCaseSpec) -> dg.AssetSpec:
    """The use case's Kafka topic, produced outside Dagster by `coelho produce`."""
    return dg.AssetSpec(
        key=topic_asset_key(spec),
        group_name=spec.key,
        kinds={"kafka"},
        description=f"Kafka topic `{spec.topic}`: {spec.title} events (JSON, keyed by "
        f"{spec.key_field}, 3 partitions).",
        metadata={"topic": spec.topic, "message_key": spec.key_field},
    )


def build_topic_defs(spec: UseCaseSpec) -> dg.Definitions:
    return dg.Definitions(assets=[topic_asset(spec)])
