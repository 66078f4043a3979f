"""The stack `concord up` / `down` / `status` manage: Kafka and Trino, the topic, the
lake's schemas.

The servers themselves (configs, command lines, readiness) are infra.services; this
module puts them together with what the platform needs on them (topic `trades`, the
lake's schemas in Trino) and reports on them. With CONCORD_KAFKA_BOOTSTRAP or
CONCORD_TRINO_URL set, the external service is used and not started here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from infra import artifacts, kafka
from infra.java import java17, java_for_trino
from infra.processes import Service, rss_bytes
from infra.services import (
    KAFKA_VERSION,
    kafka_service,
    start_kafka,
    start_trino,
    trino_info,
    trino_service,
)
from serving_layer.refresh import ensure_schemas
from shared.config import Settings


@dataclass
class UpReport:
    started: list[str]
    already: list[str]
    topic_created: bool
    seconds: float


def _servers(settings: Settings) -> list[tuple[str, Callable[[Settings], Service],
                                              Callable[[Settings], int]]]:
    """(name, service, start) of each server this machine runs, in start order."""
    return [server for server, managed in (
        (("kafka", kafka_service, start_kafka), settings.manages_kafka),
        (("trino", trino_service, start_trino), settings.manages_trino)) if managed]


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
    servers = _servers(settings)
    try:
        for name, service, start in servers:
            if service(settings).pid() is None:
                start(settings)
                started.append(name)
            else:
                already.append(name)
        topic_created = kafka.ensure_topic(settings, settings.topic, settings.topic_partitions)
        ensure_schemas(settings)
    except BaseException:
        for name, service, _ in reversed(servers):
            if name in started:
                service(settings).stop()
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
    kafka_svc = kafka_service(settings)
    pid = kafka_svc.pid() if settings.manages_kafka else None
    try:
        healthy = kafka.ready(settings)
    except Exception:  # noqa: BLE001 - any failure of the probe is "not healthy"
        healthy = False
    rows.append({
        "component": "kafka",
        "managed": settings.manages_kafka,
        "pid": pid,
        "endpoint": settings.bootstrap_servers,
        "healthy": healthy,
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
    return rows
