"""Child process of the continuous-ingestion tests: runs `<uc>_ingestion` in continuous mode
in this process, on a Dagster instance stored in a directory the parent test also opens.

    python continuous_child.py '{"use_case": ..., "topic": ..., "bootstrap_servers": ...,
        "lakehouse": ..., "instance_dir": ..., "config": {...}, "tags": {...}}'

Prints {"success": ..., "run_id": ...} when the run ends.
"""

from __future__ import annotations

import dataclasses
import json
import sys

import dagster as dg


def main(args: dict) -> None:
    from coelho_pipelines.ingestion.assets import build_ingestion_asset, build_ingestion_job
    from coelho_pipelines.naming import ingestion_job_name, ingestion_op_name
    from coelho_pipelines.resources import KafkaResource, LakehouseResource
    from coelho_pipelines.use_cases import get_spec

    spec = dataclasses.replace(get_spec(args["use_case"]), topic=args["topic"])
    asset = build_ingestion_asset(spec)
    defs = dg.Definitions(
        assets=[asset],
        jobs=[build_ingestion_job(spec, asset)],
        resources={
            "kafka": KafkaResource(bootstrap_servers=args["bootstrap_servers"]),
            "lakehouse": LakehouseResource(uri=args["lakehouse"]),
        },
    )
    job = defs.resolve_job_def(ingestion_job_name(spec))
    instance = dg.DagsterInstance.local_temp(tempdir=args["instance_dir"])
    config = {"continuous": True, **args.get("config", {})}
    result = job.execute_in_process(
        run_config={"ops": {ingestion_op_name(spec): {"config": config}}},
        instance=instance,
        tags=args.get("tags", {}),
        raise_on_error=False,
    )
    print(json.dumps({"success": result.success, "run_id": result.run_id}), flush=True)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
