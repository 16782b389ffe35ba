"""The `coelho` command and the local platform it runs: the CLI (cli.py, one module per verb
in commands/), the process supervisor for Kafka, Redis, MLflow, Dagster, the API and the
producers (platform/), and the event producers (producer.py).

It sits beside the Dagster code (`coelho_pipelines`) and the API (`coelho_serving`), and
imports both; neither imports it.
"""
