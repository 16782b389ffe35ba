"""A learner in a child process, for the kill -9 and SIGTERM tests.

Usage: python learner_child.py '<json>' where the JSON holds use_case, endpoints, settings
and optionally kill_at (events learned) with after_snapshot (durable snapshot events to
wait for before the kill -9), promotion (PromotionPolicy fields), or dagster=true to run the
Dagster job in process.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time


def run_learner(args: dict) -> None:
    from coelho_pipelines.incremental.runner import Endpoints, LearnerRun, LearnerSettings, RunHooks
    from coelho_pipelines.incremental.snapshot import SnapshotStore
    from coelho_pipelines.use_cases import get_spec

    spec = get_spec(args["use_case"])
    if args.get("promotion"):  # a quicker promotion policy (challenger tests)
        import dataclasses

        from coelho_pipelines.use_cases.spec import PromotionPolicy

        spec = dataclasses.replace(spec, river_promotion=PromotionPolicy(**args["promotion"]))
    endpoints = Endpoints(**args["endpoints"])
    settings = LearnerSettings(**args["settings"])
    kill_at = args.get("kill_at")

    def on_step(_step, learner) -> None:
        if kill_at is None or learner.events_learned < kill_at:
            return
        store = SnapshotStore(endpoints.mlflow_tracking_uri, spec, settings.experiment)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            run = store.find_run()
            info = None if run is None else store.snapshot_info(run)
            if info is not None and info.events_learned >= args["after_snapshot"]:
                print(
                    json.dumps(
                        {"killed_at": learner.events_learned, "snapshot": info.events_learned}
                    ),
                    flush=True,
                )
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(0.1)
        raise SystemExit("no durable snapshot to kill after")

    LearnerRun(spec, endpoints, settings, hooks=RunHooks(on_step=on_step)).run()


def run_job(args: dict) -> None:
    from coelho_pipelines.incremental.job import build_learning_job
    from coelho_pipelines.resources import KafkaResource, MlflowResource, RedisResource
    from coelho_pipelines.use_cases import get_spec

    spec = get_spec(args["use_case"])
    endpoints = args["endpoints"]
    job = build_learning_job(spec)
    result = job.execute_in_process(
        run_config={"ops": {f"{spec.key}_incremental_learner": {"config": args["settings"]}}},
        resources={
            "kafka": KafkaResource(bootstrap_servers=endpoints["bootstrap_servers"]),
            "redis": RedisResource(url=endpoints["redis_url"]),
            "mlflow": MlflowResource(tracking_uri=endpoints["mlflow_tracking_uri"]),
        },
        raise_on_error=False,
    )
    print(json.dumps({"success": result.success}), flush=True)


if __name__ == "__main__":
    arguments = json.loads(sys.argv[1])
    (run_job if arguments.get("dagster") else run_learner)(arguments)
