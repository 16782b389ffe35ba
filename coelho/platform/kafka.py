"""Apache Kafka in KRaft mode: Maven-resolved broker jars, one combined broker/controller.

`python -m coelho.platform` resolves the jars (what `make up` does first).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from coelho.platform.prereqs import JAVA, MAVEN, require
from coelho.platform.process import PlatformError
from coelho.platform.service import Context, ServiceDef

FILES = Path(__file__).parent / "files"
POM = FILES / "kafka-pom.xml"
LOG4J_CONFIG = FILES / "kafka-log4j2.properties"
RETENTION_MS = 7 * 24 * 3600 * 1000
DEFAULT_HEAP_OPTS = "-Xms128m -Xmx512m"
# Small, fast-starting JVM: the serial collector has the smallest footprint for one broker.
JVM_OPTS = [
    "-XX:+UseSerialGC",
    "-XX:MaxMetaspaceSize=192m",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
    "-Dlog4j2.formatMsgNoLookups=true",
    # Keep logging through the broker's own shutdown hook (log4j would stop first).
    "-Dlog4j2.shutdownHookEnabled=false",
]
_COMPLETE = ".complete"


def default_lib_dir(home: Path) -> Path:
    """Where the broker jars are cached: `COELHO_KAFKA_LIB` or `$COELHO_HOME/lib/kafka`."""
    override = os.environ.get("COELHO_KAFKA_LIB")
    return Path(override).expanduser().resolve() if override else home / "lib" / "kafka"


def _pom_digest() -> str:
    return hashlib.sha256(POM.read_bytes()).hexdigest()


def jars_ready(lib: Path) -> bool:
    """Whether `lib` holds a complete resolution of the current pom."""
    try:
        return (lib / _COMPLETE).read_text().strip() == _pom_digest()
    except OSError:
        return False


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def resolve_jars(lib: Path, timeout: float = 1200.0) -> Path:
    """Resolve the broker jars into `lib` with Maven, unless already there (safe in parallel)."""
    if jars_ready(lib):
        return lib
    require(MAVEN)
    with _file_lock(lib.parent / f".{lib.name}.lock"):
        if jars_ready(lib):
            return lib
        work = lib.parent / f".{lib.name}.resolving"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        shutil.copyfile(POM, work / "pom.xml")
        output = work / "jars"
        command = [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(work / "pom.xml"),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={output}",
        ]
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as error:
            message = f"Maven did not resolve the Kafka jars in {timeout:.0f}s"
            raise PlatformError(message) from error
        if result.returncode != 0 or not any(output.glob("kafka_2.13-*.jar")):
            lines = [ln for ln in (result.stdout + result.stderr).splitlines() if ln.strip()]
            detail = lines[-1].strip() if lines else f"exit code {result.returncode}"
            raise PlatformError(f"resolving the Kafka jars with Maven failed: {detail}")
        (output / _COMPLETE).write_text(_pom_digest())
        shutil.rmtree(lib, ignore_errors=True)
        output.rename(lib)
        shutil.rmtree(work, ignore_errors=True)
    return lib


def _new_cluster_id() -> str:
    """A Kafka cluster id (URL-safe base64 of a UUID) that cannot be mistaken for an option."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if cluster_id[0].isalnum():  # a leading '-' reads as a flag to kafka-storage
            return cluster_id


def broker_properties(ctx: Context) -> dict[str, str]:
    """The server.properties of a single combined broker/controller on 127.0.0.1."""
    broker, controller = ctx.port("kafka"), ctx.port("kafka_controller")
    return {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller}",
        "listeners": f"PLAINTEXT://127.0.0.1:{broker},CONTROLLER://127.0.0.1:{controller}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{broker}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(ctx.data_dir("kafka") / "data"),
        "num.partitions": "3",
        "auto.create.topics.enable": "false",
        "log.retention.ms": str(RETENTION_MS),
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "3",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "3",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "num.network.threads": "2",
        "num.io.threads": "4",
    }


def _config_path(ctx: Context) -> Path:
    return ctx.data_dir("kafka") / "server.properties"


def _java_command(ctx: Context, main: str, *args: str, heap: str) -> list[str]:
    return [
        "java",
        *heap.split(),
        *JVM_OPTS,
        f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
        "-cp",
        f"{ctx.kafka_lib}/*",
        main,
        *args,
    ]


def prepare(ctx: Context) -> None:
    """Java check, jars, server.properties, and a formatted log dir (first start only)."""
    require(JAVA)
    resolve_jars(ctx.kafka_lib)
    config = _config_path(ctx)
    lines = [f"{key}={value}" for key, value in broker_properties(ctx).items()]
    config.write_text("# Written by `coelho up` at every start.\n" + "\n".join(lines) + "\n")
    data = ctx.data_dir("kafka") / "data"
    if (data / "meta.properties").exists():
        return
    id_file = ctx.data_dir("kafka") / "cluster.id"
    if not id_file.exists():
        id_file.write_text(_new_cluster_id())
    command = _java_command(
        ctx,
        "kafka.tools.StorageTool",
        "format",
        "--cluster-id",
        id_file.read_text().strip(),
        "--config",
        str(config),
        "--ignore-formatted",
        heap="-Xmx256m",
    )
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0:
        lines = [ln for ln in (result.stdout + result.stderr).splitlines() if ln.strip()]
        detail = lines[-1].strip() if lines else f"exit code {result.returncode}"
        raise PlatformError(f"formatting the Kafka storage failed: {detail}")


def command(ctx: Context) -> list[str]:
    heap = os.environ.get("COELHO_KAFKA_HEAP_OPTS", DEFAULT_HEAP_OPTS)
    return _java_command(ctx, "kafka.Kafka", str(_config_path(ctx)), heap=heap)


def _tcp_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _admin(bootstrap_servers: str):
    from confluent_kafka.admin import AdminClient

    # log_level 0: connection errors while a broker starts are expected; keep stderr quiet.
    return AdminClient({"bootstrap.servers": bootstrap_servers, "log_level": 0})


def healthy(port: int) -> bool:
    """The broker answers a metadata request."""
    if not _tcp_open(port):
        return False
    try:
        metadata = _admin(f"127.0.0.1:{port}").list_topics(timeout=3)
    except Exception:  # noqa: BLE001 - any client error means "not healthy yet"
        return False
    return bool(metadata.brokers)


def ensure_topics(
    bootstrap_servers: str,
    topics: Iterable[str],
    partitions: int = 3,
    retention_ms: int = RETENTION_MS,
    timeout: float = 60.0,
) -> list[str]:
    """Create each topic (idempotent: an existing one is fine); returns the ones created.

    Waits until every topic's partitions are visible in the metadata, so producers can start.
    """
    from confluent_kafka import KafkaError
    from confluent_kafka.admin import NewTopic

    names = list(dict.fromkeys(topics))
    admin = _admin(bootstrap_servers)
    created: list[str] = []
    pending = list(names)
    deadline = time.monotonic() + timeout
    while pending:
        new = [
            NewTopic(name, partitions, 1, config={"retention.ms": str(retention_ms)})
            for name in pending
        ]
        retry = []
        for name, future in admin.create_topics(new, request_timeout=15).items():
            try:
                future.result()
                created.append(name)
            except Exception as error:
                kafka_error = error.args[0] if error.args else None
                code = kafka_error.code() if isinstance(kafka_error, KafkaError) else None
                if code == KafkaError.TOPIC_ALREADY_EXISTS:
                    continue
                retriable = isinstance(kafka_error, KafkaError) and kafka_error.retriable()
                if not retriable or time.monotonic() > deadline:
                    raise PlatformError(f"cannot create Kafka topic {name}: {error}") from error
                retry.append(name)
        pending = retry
        if pending:
            time.sleep(0.5)
    _wait_for_topics(admin, names, deadline)
    return created


def _wait_for_topics(admin, names: list[str], deadline: float) -> None:
    while True:
        metadata = admin.list_topics(timeout=10)
        missing = [
            name
            for name in names
            if name not in metadata.topics
            or metadata.topics[name].error is not None
            or not metadata.topics[name].partitions
        ]
        if not missing:
            return
        if time.monotonic() > deadline:
            raise PlatformError(f"Kafka topics not visible in time: {', '.join(missing)}")
        time.sleep(0.2)


def create_topics(bootstrap_servers: str, specs: Iterable, partitions: int = 3) -> list[str]:
    """Create the topic of each use case spec (3 partitions, 7-day retention), idempotently."""
    return ensure_topics(bootstrap_servers, [spec.topic for spec in specs], partitions)


def _create_use_case_topics(ctx: Context) -> None:
    from coelho_pipelines.use_cases import all_specs

    create_topics(f"127.0.0.1:{ctx.port('kafka')}", all_specs())


SERVICE = ServiceDef(
    name="kafka",
    description="Apache Kafka broker/controller (KRaft)",
    port_key="kafka",
    extra_port_keys=("kafka_controller",),
    url=lambda port: f"127.0.0.1:{port}",
    command=command,
    healthy=healthy,
    prepare=prepare,
    after_start=_create_use_case_topics,
    start_timeout=120.0,
    stop_timeout=30.0,
)
