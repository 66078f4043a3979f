"""The local servers: a KRaft Kafka broker and a Trino coordinator (and Trino's CLI).

Both bind to 127.0.0.1 only, keep their data and logs under $CONCORD_HOME, and are
started with heaps sized for a 2-core / 24 GiB machine (CONCORD_KAFKA_HEAP,
CONCORD_TRINO_HEAP). With CONCORD_KAFKA_BOOTSTRAP or CONCORD_TRINO_URL set, the
external service is used and not started here.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import urllib.request
import uuid
from collections.abc import Sequence
from pathlib import Path
from string import Template
from typing import Any

from infra import artifacts, kafka
from infra.java import java17, java_for_trino
from infra.monitoring import kafka_agent_options
from infra.processes import Service, ServiceError, port_in_use
from infra.security import cert_file, password, trino_security_config, write_private
from shared.config import Settings

INFRA = Path(__file__).resolve().parent
KAFKA_VERSION = "4.3.1"


def kafka_service(settings: Settings, node: int = 1) -> Service:
    """The local broker `node` (1-based): "kafka" alone, "kafka-N" in the cluster profile."""
    name = _kafka_name(settings, node)
    return Service(
        name,
        settings.run_dir,
        settings.log_dir / name / "stdout.log",
        (*settings.kafka_node_ports(node),
         *((settings.kafka_node_metrics_port(node),) if settings.monitoring else ())),
    )


def kafka_services(settings: Settings) -> list[Service]:
    """Every local broker, node 1 first."""
    return [kafka_service(settings, n) for n in range(1, settings.kafka_brokers + 1)]


def trino_service(settings: Settings) -> Service:
    return Service(
        "trino", settings.run_dir, settings.log_dir / "trino" / "server.log",
        (settings.trino_port, settings.trino_https_port)
    )


# --- Kafka -------------------------------------------------------------------------------


def _kafka_name(settings: Settings, node: int) -> str:
    """A broker's name (its service's, logs' and data folder's): "kafka" alone,
    "kafka-N" in the cluster profile."""
    return "kafka" if settings.kafka_brokers == 1 else f"kafka-{node}"


def _kafka_dir(settings: Settings, node: int) -> Path:
    return settings.data_dir / _kafka_name(settings, node)


def _kafka_config(settings: Settings, node: int = 1) -> Path:
    conf_dir = _kafka_dir(settings, node) / "config"
    conf_dir.mkdir(parents=True, exist_ok=True)
    port, controller_port = settings.kafka_node_ports(node)
    nodes = range(1, settings.kafka_brokers + 1)
    text = Template((INFRA / "kafka" / "server.properties.template").read_text()).substitute(
        node_id=node,
        quorum=",".join(f"127.0.0.1:{settings.kafka_node_ports(n)[1]}" for n in nodes),
        port=port,
        controller_port=controller_port,
        log_dirs=_kafka_dir(settings, node) / "logs",
        partitions=settings.topic_partitions,
        replication=settings.kafka_replication,
        # Acknowledged means on two of three replicas; one broker down loses nothing.
        min_isr=min(2, settings.kafka_replication),
    )
    props = conf_dir / "server.properties"
    props.write_text(text)
    return props


def _kafka_java(settings: Settings, main: str, *args: str, agent: Sequence[str] = (),
                node: int = 1) -> list[str]:
    classpath = str(artifacts.engine_dir(settings, "kafka") / "*")
    artifacts.jars(settings, "kafka")  # raises a clear error when setup has not run
    return [
        str(java17(settings).java),
        *agent,
        f"-Xmx{settings.kafka_heap}",
        f"-Xms{settings.kafka_heap}",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={INFRA / 'kafka' / 'log4j2.properties'}",
        # log4j2's own shutdown hook races Kafka's and loses the last log lines.
        "-Dlog4j2.shutdownHookEnabled=false",
        f"-Dkafka.logs.dir={kafka_service(settings, node).log_file.parent}",
        "-cp",
        classpath,
        main,
        *args,
    ]


def _kafka_ids(settings: Settings) -> dict[str, Any]:
    """The cluster id and, for each node, its log directory's id: made once and kept in
    the data folder, so that every node is formatted for the same controller quorum."""
    path = settings.data_dir / "kafka-cluster.json"
    if path.exists():
        ids: dict[str, Any] = json.loads(path.read_text())
        return ids
    ids = {"cluster_id": _kafka_cluster_id(),
           "directories": {str(n): _kafka_cluster_id()
                           for n in range(1, settings.kafka_brokers + 1)}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(ids))
    return ids


def _format_kafka_storage(settings: Settings, props: Path, node: int = 1) -> None:
    """Format the KRaft log dir once (a formatted dir has meta.properties): a single
    node as its own quorum (--standalone); in the cluster profile, every node with the
    same initial controllers, each its own directory id."""
    if (_kafka_dir(settings, node) / "logs" / "meta.properties").exists():
        return
    if settings.kafka_brokers == 1:
        quorum = ["--standalone"]
        cluster_id = _kafka_cluster_id()
    else:
        ids = _kafka_ids(settings)
        cluster_id = ids["cluster_id"]
        quorum = ["--initial-controllers", ",".join(
            f"{n}@127.0.0.1:{settings.kafka_node_ports(n)[1]}:{ids['directories'][str(n)]}"
            for n in range(1, settings.kafka_brokers + 1))]
    cmd = _kafka_java(
        settings, "kafka.tools.StorageTool", "format", *quorum,
        "-t", cluster_id, "-c", str(props), node=node,
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


def start_kafka(settings: Settings) -> int:
    """Start every local broker that is not running, and wait until the brokers serve
    (in the cluster profile: all of them registered; a quorum needs two of the three
    controllers, so the nodes start together and are waited for together)."""
    env = {**os.environ, "JAVA_HOME": str(java17(settings).home)}
    pids = []
    for node, service in enumerate(kafka_services(settings), start=1):
        if service.pid() is not None:
            continue
        props = _kafka_config(settings, node)
        _format_kafka_storage(settings, props, node)
        controller = settings.kafka_node_ports(node)[1]
        single = settings.kafka_brokers == 1
        pids.append(service.start(
            _kafka_java(settings, "kafka.Kafka", str(props),
                        agent=kafka_agent_options(settings, node), node=node),
            env=env,
            cwd=_kafka_dir(settings, node),
            # One node: ready when it serves. Several: when its controller listens (the
            # cluster is waited for below, once every node runs).
            ready=(lambda: kafka.ready(settings)) if single
            else functools.partial(port_in_use, controller),
            timeout_s=90,
        ))
    if settings.kafka_brokers > 1:
        kafka.wait_for_brokers(settings, settings.kafka_brokers, timeout_s=120)
    return pids[0] if pids else (kafka_service(settings).pid() or 0)


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
        # The cluster profile's coordinator only plans and schedules: its worker runs
        # every task (infra.cluster).
        f"node-scheduler.include-coordinator={str(settings.profile != 'cluster').lower()}\n"
        f"http-server.http.port={port}\n"
        f"discovery.uri=http://127.0.0.1:{port}\n"
        "node.bind-ip=127.0.0.1\n"
        "node.internal-address=127.0.0.1\n"
        "query.max-memory=1GB\n"
        "query.max-memory-per-node=1GB\n"
        "memory.heap-headroom-per-node=512MB\n"
        # One node: a distributed sort only adds a stage (a round-robin exchange and a
        # merge) to every ORDER BY; it exists to spread sorts over many nodes' memory.
        # The desk's ordered one-book queries: ~25% less time without it (BENCHMARKS.md).
        "distributed-sort=false\n"
        + security
    ).encode())
    write_catalog(settings, etc)
    return etc


def write_catalog(settings: Settings, etc: Path) -> None:
    """The lake's catalog file under `etc/catalog` (every Trino node has the same)."""
    settings.lake_path.mkdir(parents=True, exist_ok=True)
    metastore = settings.data_dir / "trino" / "metastore"
    metastore.mkdir(parents=True, exist_ok=True)
    (etc / "catalog").mkdir(parents=True, exist_ok=True)
    text = Template((INFRA / "trino" / "lake.properties.template").read_text()).substitute(
        metastore_dir=metastore)
    if settings.hive_metastore_uri:
        # A Hive metastore (Thrift) instead of the file one: many writers, one catalog.
        text = text.replace("hive.metastore=file\n", f"hive.metastore=thrift\n"
                            f"hive.metastore.uri={settings.hive_metastore_uri}\n")
        text = text.replace(f"hive.metastore.catalog.dir=local://{metastore}\n", "")
    (etc / "catalog" / f"{settings.catalog}.properties").write_text(text)


def trino_info(settings: Settings) -> dict[str, Any]:
    with urllib.request.urlopen(f"{settings.trino_health_url}/v1/info", timeout=3) as resp:  # noqa: S310
        info: dict[str, Any] = json.loads(resp.read())
    return info


def trino_ready(settings: Settings) -> bool:
    """Real readiness: /v1/info says the coordinator finished starting."""
    return trino_info(settings).get("starting") is False


def trino_command(settings: Settings, *, node_id: str, heap: str, etc: Path, data: Path,
                  log_file: Path) -> list[str]:
    """The command line of a Trino node (coordinator or worker) with config in `etc`."""
    server = artifacts.trino_server_dir(settings)
    data.mkdir(parents=True, exist_ok=True)
    return [
        str(java_for_trino(settings).java),
        "-server",
        f"-Xmx{heap}",
        *TRINO_JVM_FLAGS,
        "-cp",
        str(server / "lib" / "*"),
        "-Dnode.environment=concord",
        f"-Dnode.id={node_id}",
        f"-Dnode.data-dir={data}",
        f"-Dconfig={etc / 'config.properties'}",
        f"-Dcatalog.config-dir={etc / 'catalog'}",
        f"-Dplugin.dir={server / 'plugin'}",
        f"-Dlog.output-file={log_file}",
        "io.trino.server.TrinoServer",
    ]


def start_trino(settings: Settings) -> int:
    data = settings.data_dir / "trino" / "node"
    cmd = trino_command(settings, node_id="concord-coordinator", heap=settings.trino_heap,
                        etc=_trino_config(settings), data=data,
                        log_file=settings.log_dir / "trino" / "trino.log")
    env = {**os.environ, "JAVA_HOME": str(java_for_trino(settings).home)}
    return trino_service(settings).start(
        cmd, env=env, cwd=data, ready=lambda: trino_ready(settings), timeout_s=180,
        nice=settings.trino_nice,
    )


def trino_cli(settings: Settings, *, user: str, schema: str, execute: str | None = None,
              output_format: str = "ALIGNED") -> tuple[list[str], dict[str, str]]:
    """The Trino CLI's command line and environment: catalog `lake`, HTTPS as `user`, the
    password in TRINO_PASSWORD (never on the command line), the local coordinator's
    certificate as the trust store."""
    cmd = [str(java_for_trino(settings).java), "-jar", str(artifacts.trino_cli_jar(settings)),
           "--server", settings.trino_endpoint, "--user", user, "--password",
           "--catalog", settings.catalog, "--schema", schema]
    if settings.manages_trino:
        cmd += ["--truststore-path", str(cert_file(settings))]
    if execute:
        cmd += ["--execute", execute, "--output-format", output_format]
    return cmd, {**os.environ, "TRINO_PASSWORD": password(settings, user)}
