"""Idle resident memory of the local platform after `coelho up` (target: under 4 GiB).

Starts the services with the same code as `coelho up` on a temp COELHO_HOME and free ports,
lets them settle, samples `coelho status` memory (each process with its children), then stops
them. Prints per-service MiB, the total, and the ratio to the 4 GiB budget.

    .venv/bin/python bench/platform_memory.py [--services kafka,redis,mlflow,dagster] [--idle 30]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from coelho.platform import parse_services
from coelho.platform.ephemeral import free_port_platform

BUDGET_BYTES = 4 * 2**30


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", default="kafka,redis,mlflow,dagster")
    parser.add_argument("--idle", type=float, default=30.0, help="seconds to settle (default 30)")
    parser.add_argument("--samples", type=int, default=3)
    args = parser.parse_args()
    names = parse_services(args.services)
    with tempfile.TemporaryDirectory(prefix="coelho-bench-") as home:
        platform = free_port_platform(Path(home))
        try:
            failures = platform.up(names)
            if failures:
                print("\n".join(failures), file=sys.stderr)
                return 1
            time.sleep(args.idle)
            peaks: dict[str, int] = {}
            for _ in range(args.samples):
                for row in platform.status(names):
                    peaks[row.name] = max(peaks.get(row.name, 0), row.rss_bytes or 0)
                time.sleep(2)
        finally:
            platform.down(report=lambda _line: None)
    total = sum(peaks.values())
    for name, rss in peaks.items():
        print(f"{name:10s} {rss / 2**20:8.0f} MiB")
    print(f"{'total':10s} {total / 2**20:8.0f} MiB  ({total / 2**30:.2f} GiB)")
    print(f"budget ratio: {total / BUDGET_BYTES:.2f} of 4 GiB (target < 1.00)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
