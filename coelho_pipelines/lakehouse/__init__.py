"""The lakehouse: Delta table names and paths (`naming`), their layout and creation (`tables`)
and their upkeep (`maintenance`, the `lakehouse_maintenance` job)."""
