"""Redis from the Debian `redis-server`, append-only file under `$COELHO_HOME/redis`."""

from __future__ import annotations

from coelho.platform.prereqs import REDIS, require
from coelho.platform.service import Context, ServiceDef


def prepare(ctx: Context) -> None:
    require(REDIS)
    ctx.data_dir("redis")


def command(ctx: Context) -> list[str]:
    return [
        "redis-server",
        "--bind",
        "127.0.0.1",
        "--port",
        str(ctx.port("redis")),
        "--dir",
        str(ctx.data_dir("redis")),
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--daemonize",
        "no",
        "--protected-mode",
        "yes",
        "--save",
        "300 1",
        "--logfile",
        "",
        "--databases",
        "16",
    ]


def healthy(port: int) -> bool:
    """The server answers PING."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2, socket_connect_timeout=2)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


SERVICE = ServiceDef(
    name="redis",
    description="Redis (live models, learner status)",
    port_key="redis",
    url=lambda port: f"redis://127.0.0.1:{port}/0",
    command=command,
    healthy=healthy,
    prepare=prepare,
    start_timeout=30.0,
)
