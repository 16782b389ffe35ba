"""Kafka to Delta Lake ingestion: exactly-once appends, dead letters, checks and upkeep.

Modules: `validate` (event validation), `consume` (bounded Kafka reads), `writer`
(exactly-once Delta commits), `pipeline` (one ingestion pass), `assets`, `sensor`, `checks`
(Dagster definitions). Table layout and upkeep live in `coelho_pipelines.lakehouse`.
"""
