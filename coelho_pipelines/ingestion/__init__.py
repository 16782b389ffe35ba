"""Kafka to Delta Lake ingestion: exactly-once appends, dead letters, checks and upkeep.

Modules: `tables` (layout and schemas), `validate` (event validation), `consume` (bounded Kafka
reads), `writer` (exactly-once Delta commits), `pipeline` (one ingestion pass), `assets`,
`sensor`, `checks`, `maintenance` (Dagster definitions).
"""
