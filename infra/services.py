"""The local servers `concord up` runs: a KRaft Kafka broker and a Trino coordinator.

Both bind to 127.0.0.1 only, keep their data and logs under $CONCORD_HOME, and are
started with heaps sized for a 2-core / 24 GiB machine (CONCORD_KAFKA_HEAP,
CONCORD_TRINO_HEAP). With CONCORD_KAFKA_BOOTSTRAP or CONCORD_TRINO_URL set, the
external service is used and not started here.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

from infra import artifacts
from infra.java import java17, java_for_trino
from infra.processes import Service, ServiceError, free_port, port_in_use, rss_bytes
from infra.security import trino_security_config, write_private
from shared.config import Settings

INFRA = Path(__file__).resolve().parent
SCHEMAS = ("raw", "speed", "batch", "meta", "serving")
KAFKA_VERSION = "4.3.1"


def kafka_service(settings: Settings) -> Service:
    return Service(
        "kafka",
        settings.run_dir,
        settings.log_dir / "kafka" / "stdout.log",
        (settings.kafka_port, settings.kafka_controller_port),
    )


def trino_service(settings: Settings) -> Service:
    return Service(
        "trino", settings.run_dir, settings.log_dir / "trino" / "server.log",
        (settings.trino_port, settings.trino_https_port)
    )


# --- Kafka -------------------------------------------------------------------------------


def _kafka_config(settings: Settings) -> Path:
    conf_dir = settings.data_dir / "kafka" / "config"
    conf_dir.mkdir(parents=True, exist_ok=True)
    log_dirs = settings.data_dir / "kafka" / "logs"
    text = Template((INFRA / "kafka" / "server.properties.template").read_text()).substitute(
        port=settings.kafka_port,
        controller_port=settings.kafka_controller_port,
        log_dirs=log_dirs,
        partitions=settings.topic_partitions,
    )
    props = conf_dir / "server.properties"
    props.write_text(text)
    return props


def _kafka_java(settings: Settings, main: str, *args: str) -> list[str]:
    classpath = str(artifacts.engine_dir(settings, "kafka") / "*")
    artifacts.jars(settings, "kafka")  # raises a clear error when setup has not run
    return [
        str(java17(settings).java),
        f"-Xmx{settings.kafka_heap}",
        f"-Xms{settings.kafka_heap}",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={INFRA / 'kafka' / 'log4j2.properties'}",
        # log4j2's own shutdown hook races Kafka's and loses the last log lines.
        "-Dlog4j2.shutdownHookEnabled=false",
        f"-Dkafka.logs.dir={settings.log_dir / 'kafka'}",
        "-cp",
        classpath,
        main,
        *args,
    ]


def _format_kafka_storage(settings: Settings, props: Path) -> None:
    """Format the KRaft log dir once (a formatted dir has meta.properties)."""
    if (settings.data_dir / "kafka" / "logs" / "meta.properties").exists():
        return
    cluster_id = _kafka_cluster_id()
    cmd = _kafka_java(
        settings, "kafka.tools.StorageTool", "format", "--standalone",
        "-t", cluster_id, "-c", str(props),
    )
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ServiceError(f"formatting Kafka storage failed:\n{proc.stdout}{proc.stderr}")


def _kafka_cluster_id() -> str:
    """16 random bytes, URL-safe base64 without padding, as Kafka's own tool makes them.

    Like Kafka's Uuid.randomUuid, never one starting with '-': the storage tool would
    read it as an option.
    """
    import base64

    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def kafka_ready(settings: Settings) -> bool:
    """Real readiness: the broker answers a metadata request."""
    from kafka import KafkaAdminClient

    # No listener at all: say so now, not after the client's 30 s bootstrap timeout.
    host, _, port = settings.bootstrap_servers.split(",")[0].rpartition(":")
    if not port_in_use(int(port), host):
        return False
    admin = KafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers, request_timeout_ms=3000,
        client_id="concord-probe",
    )
    try:
        admin.list_topics()
        return True
    finally:
        admin.close()


def ensure_topic(settings: Settings, topic: str, partitions: int) -> bool:
    """Create `topic` if missing; False when it existed already."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    try:
        if topic in admin.list_topics():
            return False
        try:
            admin.create_topics([NewTopic(topic, partitions, 1)])
        except TopicAlreadyExistsError:
            return False
        return True
    finally:
        admin.close()


def end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    """The next offset to be written per partition of `topic`."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers,
                             request_timeout_ms=5000)
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in parts])
        return {tp.partition: int(o) for tp, o in ends.items()}
    finally:
        consumer.close()


def committed_offsets(settings: Settings, group: str, topic: str) -> dict[int, int] | None:
    """The offsets `group` committed on `topic`, per partition; None when it has none."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=group,
                             enable_auto_commit=False)
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        found = {p: consumer.committed(TopicPartition(topic, p)) for p in sorted(parts)}
    finally:
        consumer.close()
    out = {p: int(o) for p, o in found.items() if o is not None}
    return out or None


def group_lag(settings: Settings, group: str, topic: str) -> int:
    """Messages of `topic` past what `group` committed (all partitions)."""
    committed = committed_offsets(settings, group, topic) or {}
    return sum(max(0, end - committed.get(p, 0))
               for p, end in end_offsets(settings, topic).items())


def start_kafka(settings: Settings) -> int:
    props = _kafka_config(settings)
    _format_kafka_storage(settings, props)
    env = {**os.environ, "JAVA_HOME": str(java17(settings).home)}
    return kafka_service(settings).start(
        _kafka_java(settings, "kafka.Kafka", str(props)),
        env=env,
        cwd=settings.data_dir / "kafka",
        ready=lambda: kafka_ready(settings),
        timeout_s=90,
    )


# --- Trino -------------------------------------------------------------------------------

TRINO_JVM_FLAGS = (
    "-XX:G1HeapRegionSize=32M",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:+ExitOnOutOfMemoryError",
    "-XX:-OmitStackTraceInFastThrow",
    "-XX:ReservedCodeCacheSize=256M",
    "-XX:PerMethodRecompilationCutoff=10000",
    "-XX:PerBytecodeRecompilationCutoff=10000",
    "-Djdk.attach.allowAttachSelf=true",
    "-Djdk.nio.maxCachedBufferSize=2000000",
    "-Dfile.encoding=UTF-8",
    "-XX:+EnableDynamicAgentLoading",
    "--enable-native-access=ALL-UNNAMED",
    "--sun-misc-unsafe-memory-access=allow",
)


def _trino_config(settings: Settings) -> Path:
    etc = settings.data_dir / "trino" / "etc"
    (etc / "catalog").mkdir(parents=True, exist_ok=True)
    port = settings.trino_port
    security = trino_security_config(settings, etc)
    write_private(etc / "config.properties", (
        "coordinator=true\n"
        "node-scheduler.include-coordinator=true\n"
        f"http-server.http.port={port}\n"
        f"discovery.uri=http://127.0.0.1:{port}\n"
        "node.bind-ip=127.0.0.1\n"
        "node.internal-address=127.0.0.1\n"
        "query.max-memory=1GB\n"
        "query.max-memory-per-node=1GB\n"
        "memory.heap-headroom-per-node=512MB\n"
        + security
    ).encode())
    settings.lake_path.mkdir(parents=True, exist_ok=True)
    metastore = settings.data_dir / "trino" / "metastore"
    metastore.mkdir(parents=True, exist_ok=True)
    (etc / "catalog" / f"{settings.catalog}.properties").write_text(
        Template((INFRA / "trino" / "lake.properties.template").read_text()).substitute(
            metastore_dir=metastore
        )
    )
    return etc


def trino_info(settings: Settings) -> dict[str, Any]:
    with urllib.request.urlopen(f"{settings.trino_health_url}/v1/info", timeout=3) as resp:  # noqa: S310
        info: dict[str, Any] = json.loads(resp.read())
    return info


def trino_ready(settings: Settings) -> bool:
    """Real readiness: /v1/info says the coordinator finished starting."""
    return trino_info(settings).get("starting") is False


def start_trino(settings: Settings) -> int:
    server = artifacts.trino_server_dir(settings)
    etc = _trino_config(settings)
    data = settings.data_dir / "trino" / "node"
    data.mkdir(parents=True, exist_ok=True)
    jdk = java_for_trino(settings)
    cmd = [
        str(jdk.java),
        "-server",
        f"-Xmx{settings.trino_heap}",
        *TRINO_JVM_FLAGS,
        "-cp",
        str(server / "lib" / "*"),
        "-Dnode.environment=concord",
        "-Dnode.id=concord-coordinator",
        f"-Dnode.data-dir={data}",
        f"-Dconfig={etc / 'config.properties'}",
        f"-Dcatalog.config-dir={etc / 'catalog'}",
        f"-Dplugin.dir={server / 'plugin'}",
        f"-Dlog.output-file={settings.log_dir / 'trino' / 'trino.log'}",
        "io.trino.server.TrinoServer",
    ]
    env = {**os.environ, "JAVA_HOME": str(jdk.home)}
    return trino_service(settings).start(
        cmd, env=env, cwd=data, ready=lambda: trino_ready(settings), timeout_s=180
    )


def ensure_schemas(settings: Settings) -> None:
    """Create the lake's schemas in Trino (idempotent)."""
    from serving_layer.trino import connect

    with connect(settings) as conn:
        cur = conn.cursor()
        for schema in SCHEMAS:
            # Explicit location: the schema's folder in the lake, not in the metastore.
            location = settings.table_uri(schema, "").rstrip("/")
            cur.execute(
                f"CREATE SCHEMA IF NOT EXISTS {settings.catalog}.{schema} "
                f"WITH (location = '{location}')"
            )
            cur.fetchall()


def private_settings(home: Path, **overrides: Any) -> Settings:
    """Settings for a stack of its own: `home` as CONCORD_HOME and a free port for each of
    Kafka's and Trino's listeners, so it never collides with a demo or another stack
    (tests and benchmarks)."""
    ports = {"kafka_port": free_port(), "kafka_controller_port": free_port(),
             "trino_port": free_port(), "trino_https_port": free_port()}
    return Settings(home=home, **{**ports, **overrides})


# --- the stack ---------------------------------------------------------------------------


@dataclass
class UpReport:
    started: list[str]
    already: list[str]
    topic_created: bool
    seconds: float


def up(settings: Settings) -> UpReport:
    """Start what is not running, wait until healthy; on failure stop what this call started."""
    t0 = time.monotonic()
    started: list[str] = []
    already: list[str] = []
    # Fail fast on missing pieces, before any process starts.
    if settings.manages_kafka:
        java17(settings)
        artifacts.jars(settings, "kafka")
    if settings.manages_trino:
        java_for_trino(settings)
        artifacts.trino_server_dir(settings)
    try:
        if settings.manages_kafka:
            if kafka_service(settings).pid() is None:
                start_kafka(settings)
                started.append("kafka")
            else:
                already.append("kafka")
        if settings.manages_trino:
            if trino_service(settings).pid() is None:
                start_trino(settings)
                started.append("trino")
            else:
                already.append("trino")
        topic_created = ensure_topic(settings, settings.topic, settings.topic_partitions)
        ensure_schemas(settings)
    except BaseException:
        for name in reversed(started):
            (kafka_service if name == "kafka" else trino_service)(settings).stop()
        raise
    return UpReport(started, already, topic_created, time.monotonic() - t0)


def down(settings: Settings) -> list[str]:
    """Stop the servers `up` started (Trino first, it reads the lake); returns their names."""
    stopped = []
    for svc in (trino_service(settings), kafka_service(settings)):
        if svc.stop():
            stopped.append(svc.name)
    return stopped


def status(settings: Settings) -> list[dict[str, Any]]:
    """One entry per component: pid, port, health, version, resident memory."""
    rows: list[dict[str, Any]] = []
    kafka = kafka_service(settings)
    pid = kafka.pid() if settings.manages_kafka else None
    try:
        healthy = kafka_ready(settings)
    except Exception:
        healthy = False
    rows.append({
        "component": "kafka",
        "managed": settings.manages_kafka,
        "pid": pid,
        "endpoint": settings.bootstrap_servers,
        "healthy": healthy,
        "version": KAFKA_VERSION if settings.manages_kafka else None,
        "rss_mb": round(rss_bytes(pid) / 2**20) if pid else None,
        "log": str(kafka.log_file.parent),
    })
    trino = trino_service(settings)
    pid = trino.pid() if settings.manages_trino else None
    try:
        info = trino_info(settings)
        healthy = info.get("starting") is False
        version = info.get("nodeVersion", {}).get("version")
    except Exception:
        healthy, version = False, None
    rows.append({
        "component": "trino",
        "managed": settings.manages_trino,
        "pid": pid,
        "endpoint": settings.trino_endpoint,
        "healthy": healthy,
        "version": version,
        "rss_mb": round(rss_bytes(pid) / 2**20) if pid else None,
        "log": str(trino.log_file.parent),
    })
    return rows
