#!/bin/sh
# Roles of the Coelho image; anything else runs as given (e.g. `dagster api execute_run`).
set -eu

case "${1:-}" in
    api)
        shift
        exec coelho serve --host 0.0.0.0 --port "${COELHO_API_PORT:-8000}" "$@"
        ;;
    producers)
        shift
        exec coelho produce --use-case all "$@"
        ;;
    code-server)
        shift
        exec dagster code-server start -h 0.0.0.0 -p "${DAGSTER_GRPC_PORT:-3030}" \
            -f /opt/coelho/definitions.py -d /opt/coelho "$@"
        ;;
    mlflow)
        shift
        exec mlflow server --host 0.0.0.0 --port "${COELHO_MLFLOW_PORT:-5000}" "$@"
        ;;
    *)
        exec "$@"
        ;;
esac
