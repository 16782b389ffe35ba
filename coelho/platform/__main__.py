"""`python -m coelho.platform`: resolve the Kafka broker jars (`make kafka-jars`).

Into `COELHO_KAFKA_LIB` or `$COELHO_HOME/lib/kafka`; instant when already resolved.
"""

from __future__ import annotations

import sys

from coelho.platform.kafka import default_lib_dir, resolve_jars
from coelho.platform.process import PlatformError
from coelho_pipelines.settings import coelho_home


def main() -> int:
    lib = default_lib_dir(coelho_home())
    try:
        resolve_jars(lib)
    except PlatformError as error:
        print(f"coelho: {error}", file=sys.stderr)
        return 1
    print(f"Kafka broker jars: {lib}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
