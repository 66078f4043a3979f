"""Is the service a command needs there? A short TCP probe before the command starts any
work (an engine, a Spark session), so that a stopped stack is one line naming the
command that brings it up, not a client library's retry loop or connection trace."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from shared.config import Settings

PROBE_TIMEOUT_S = 2.0


def _answers(host: str, port: int, timeout_s: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def _host_port(address: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(address if "//" in address else f"//{address}")
    return parts.hostname or "127.0.0.1", parts.port or default_port


def trino_problem(settings: Settings, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """None when Trino's query endpoint accepts connections, else what to do."""
    endpoint = settings.trino_endpoint
    host, port = _host_port(endpoint, 443 if endpoint.startswith("https") else 80)
    if _answers(host, port, timeout_s):
        return None
    if settings.manages_trino:
        return f"Trino is not running at {endpoint}: run `concord up`"
    return f"Trino does not answer at {endpoint} (CONCORD_TRINO_URL): is it up?"


def kafka_problem(settings: Settings, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """None when a bootstrap broker accepts connections, else what to do."""
    servers = settings.bootstrap_servers
    if any(_answers(*_host_port(s.strip(), 9092), timeout_s) for s in servers.split(",")):
        return None
    if settings.manages_kafka:
        return f"Kafka is not running at {servers}: run `concord up`"
    return f"Kafka does not answer at {servers} (CONCORD_KAFKA_BOOTSTRAP): is it up?"


PROBES = {"trino": trino_problem, "kafka": kafka_problem}


def first_problem(settings: Settings, needs: tuple[str, ...]) -> str | None:
    """The first of `needs` ("trino", "kafka") that is not there, said as what to do."""
    for need in needs:
        if (problem := PROBES[need](settings)) is not None:
            return problem
    return None
