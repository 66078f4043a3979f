"""The stack `concord up` / `down` / `status` manage: Kafka and Trino, the topic, the
lake's schemas; with CONCORD_MONITORING on, the platform's exporter (concord.metrics)
and Prometheus (infra.monitoring) too.

The servers themselves (configs, command lines, readiness) are infra.services; this
module puts them together with what the platform needs on them (topic `trades`, the
lake's schemas in Trino) and reports on them. With CONCORD_KAFKA_BOOTSTRAP or
CONCORD_TRINO_URL set, the external service is used and not started here.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from concord.metrics import exporter_service
from infra import artifacts, kafka
from infra.cluster import (
    flink_services,
    metastore_service,
    postgres_service,
    spark_services,
    start_flink,
    start_metastore,
    start_postgres,
    start_spark,
    start_trino_worker,
    trino_worker_service,
)
from infra.java import java17, java_for_trino
from infra.monitoring import (
    prometheus_alerts,
    prometheus_api,
    prometheus_ready,
    prometheus_service,
    prometheus_targets,
    start_prometheus,
)
from infra.processes import Service, port_in_use, rss_bytes
from infra.services import (
    KAFKA_VERSION,
    kafka_services,
    start_kafka,
    start_trino,
    trino_info,
    trino_service,
)
from serving_layer.refresh import ensure_schemas
from shared.config import REPO_ROOT, Settings


@dataclass
class UpReport:
    started: list[str]
    already: list[str]
    topic_created: bool
    seconds: float


def start_exporter(settings: Settings) -> int:
    env = {**os.environ, **settings.as_env()}
    return exporter_service(settings).start(
        [sys.executable, "-m", "concord.metrics"], env=env, cwd=REPO_ROOT,
        ready=lambda: port_in_use(settings.metrics_port), timeout_s=60)


# (name, its processes, start): `start` starts those not running and waits until the
# server is healthy.
Server = tuple[str, Callable[[Settings], list[Service]], Callable[[Settings], int]]


def _servers(settings: Settings) -> list[Server]:
    """Each engine server this machine runs, in start order (the cluster profile's
    engine clusters too: infra.cluster)."""
    cluster = settings.profile == "cluster"
    return [server for server, managed in (
        (("kafka", kafka_services, start_kafka), settings.manages_kafka),
        (("spark", spark_services, start_spark), cluster),
        (("flink", flink_services, start_flink), cluster),
        (("postgres", lambda s: [postgres_service(s)], start_postgres), cluster),
        (("metastore", lambda s: [metastore_service(s)], start_metastore), cluster),
        (("trino", lambda s: [trino_service(s)], start_trino), settings.manages_trino),
        (("trino-worker", lambda s: [trino_worker_service(s)], start_trino_worker),
         cluster and settings.manages_trino))
        if managed]


def _monitors(settings: Settings) -> list[Server]:
    """The exporter and Prometheus, when monitoring is on: started once the topic and
    the schemas they report on exist."""
    if not settings.monitoring:
        return []
    return [("exporter", lambda s: [exporter_service(s)], start_exporter),
            ("prometheus", lambda s: [prometheus_service(s)], start_prometheus)]


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
    if settings.monitoring:
        artifacts.prometheus_bin(settings, "prometheus")
        if settings.manages_kafka:
            artifacts.jmx_agent_jar(settings)
    servers, monitors = _servers(settings), _monitors(settings)

    def start_all(which: list[Server]) -> None:
        for name, services, start in which:
            if any(service.pid() is None for service in services(settings)):
                start(settings)
                started.append(name)
            else:
                already.append(name)

    try:
        start_all(servers)
        topic_created = kafka.ensure_topic(settings, settings.topic, settings.topic_partitions)
        ensure_schemas(settings)
        start_all(monitors)
    except BaseException:
        for name, services, _ in reversed(servers + monitors):
            if name in started:
                for service in services(settings):
                    service.stop()
        raise
    return UpReport(started, already, topic_created, time.monotonic() - t0)


def down(settings: Settings) -> list[str]:
    """Stop the servers `up` started (Prometheus and the exporter first, then Trino: it
    reads the lake); returns their names. Monitoring is stopped also when it is off now
    (it may have been on at `up`)."""
    stopped = []
    for svc in (prometheus_service(settings), exporter_service(settings),
                trino_worker_service(settings), trino_service(settings),
                metastore_service(settings), postgres_service(settings),
                *reversed(flink_services(settings)), *reversed(spark_services(settings)),
                *kafka_services(settings)):
        if svc.stop():
            stopped.append(svc.name)
    return stopped


def status(settings: Settings, *, monitoring: bool = True) -> list[dict[str, Any]]:
    """One entry per component: pid, port, health, version, resident memory; with
    `monitoring` (and CONCORD_MONITORING on) the exporter and Prometheus too."""
    rows: list[dict[str, Any]] = []
    try:
        healthy = kafka.ready(settings)
        registered = kafka.brokers(settings) if settings.kafka_brokers > 1 else []
    except Exception:  # noqa: BLE001 - any failure of the probe is "not healthy"
        healthy, registered = False, []
    for node, kafka_svc in enumerate(kafka_services(settings), start=1):
        pid = kafka_svc.pid() if settings.manages_kafka else None
        cluster = settings.kafka_brokers > 1
        rows.append({
            "component": kafka_svc.name,
            "managed": settings.manages_kafka,
            "pid": pid,
            "endpoint": (f"127.0.0.1:{settings.kafka_node_ports(node)[0]}" if cluster
                         else settings.bootstrap_servers),
            # A cluster's node is healthy when it runs and is registered.
            "healthy": (healthy and pid is not None and node in registered) if cluster
            else healthy,
            "version": KAFKA_VERSION if settings.manages_kafka else None,
            "rss_mb": round(rss_bytes(pid) / 2**20) if pid else None,
            "log": str(kafka_svc.log_file.parent),
        })
    trino = trino_service(settings)
    pid = trino.pid() if settings.manages_trino else None
    try:
        info = trino_info(settings)
        healthy = info.get("starting") is False
        version = info.get("nodeVersion", {}).get("version")
    except Exception:  # noqa: BLE001 - any failure of the probe is "not healthy"
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
    if settings.profile == "cluster":
        rows += cluster_status(settings)
    if monitoring and settings.monitoring:
        rows += monitoring_status(settings)
    return rows


def cluster_status(settings: Settings) -> list[dict[str, Any]]:
    """The cluster profile's Spark master and workers, Flink JobManager and
    TaskManagers, Trino worker: running, listening."""
    rows = []
    for svc in (*spark_services(settings), *flink_services(settings),
                postgres_service(settings), metastore_service(settings),
                trino_worker_service(settings)):
        pid = svc.pid()
        rows.append({"component": svc.name, "managed": True, "pid": pid,
                     "endpoint": (f"127.0.0.1:{svc.ports[0]}" if svc.ports else "") + (
                         f" (web {svc.ports[1]})" if len(svc.ports) > 1 else ""),
                     "healthy": pid is not None and all(port_in_use(p) for p in svc.ports),
                     "version": None, "rss_mb": round(rss_bytes(pid) / 2**20) if pid else None,
                     "log": str(svc.log_file.parent)})
    return rows


def monitoring_status(settings: Settings) -> list[dict[str, Any]]:
    """The exporter and Prometheus: running, answering; Prometheus' targets and alerts."""
    rows: list[dict[str, Any]] = []
    exporter = exporter_service(settings)
    pid = exporter.pid()
    rows.append({"component": "exporter", "managed": True, "pid": pid,
                 "endpoint": f"http://127.0.0.1:{settings.metrics_port}/metrics",
                 "healthy": pid is not None and port_in_use(settings.metrics_port),
                 "version": None, "rss_mb": round(rss_bytes(pid) / 2**20) if pid else None,
                 "log": str(exporter.log_file.parent)})
    prom = prometheus_service(settings)
    pid = prom.pid()
    row: dict[str, Any] = {"component": "prometheus", "managed": True, "pid": pid,
                           "endpoint": settings.prometheus_url, "healthy": False,
                           "version": None,
                           "rss_mb": round(rss_bytes(pid) / 2**20) if pid else None,
                           "log": str(prom.log_file.parent)}
    try:
        row["healthy"] = prometheus_ready(settings)
        build = prometheus_api(settings, "/api/v1/status/buildinfo")
        row["version"] = build.get("version")
        row["targets"] = prometheus_targets(settings)
        row["alerts"] = prometheus_alerts(settings)
    except Exception:  # noqa: BLE001, S110 - any failure of the probe is "not healthy"
        pass
    rows.append(row)
    return rows
