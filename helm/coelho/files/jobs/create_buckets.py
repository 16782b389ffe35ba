"""Create the MinIO buckets of the lakehouse and of MLflow's artifacts (idempotent).

Run by the chart's post-install Job with boto3. Bucket names from COELHO_BUCKETS (comma
separated); endpoint and credentials from the Coelho environment. Waits for MinIO up to
COELHO_JOB_DEADLINE_SECONDS.
"""

from __future__ import annotations

import os
import sys
import time

import boto3
from botocore.exceptions import BotoCoreError, ClientError


def main() -> int:
    client = boto3.client(
        "s3",
        endpoint_url=os.environ["COELHO_STORAGE_AWS_ENDPOINT_URL"],
        aws_access_key_id=os.environ["COELHO_STORAGE_AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["COELHO_STORAGE_AWS_SECRET_ACCESS_KEY"],
        region_name=os.environ.get("COELHO_STORAGE_AWS_REGION", "us-east-1"),
    )
    deadline = time.monotonic() + float(os.environ.get("COELHO_JOB_DEADLINE_SECONDS", "600"))
    while True:
        try:
            existing = {bucket["Name"] for bucket in client.list_buckets().get("Buckets", [])}
            break
        except (BotoCoreError, ClientError) as error:
            if time.monotonic() > deadline:
                raise SystemExit(f"create_buckets: MinIO not reachable: {error}") from error
            print(f"create_buckets: waiting for MinIO ({error})", flush=True)
            time.sleep(5)
    for name in filter(None, (b.strip() for b in os.environ["COELHO_BUCKETS"].split(","))):
        if name in existing:
            print(f"create_buckets: {name} exists", flush=True)
            continue
        client.create_bucket(Bucket=name)
        print(f"create_buckets: created {name}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
