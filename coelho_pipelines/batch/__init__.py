"""Batch ML as a Dagster lineage graph: features -> training set -> model -> evaluation ->
visualizations -> champion. `registry` is importable without Dagster (the API uses it)."""
