"""The operator's view: `concord up/status/smoke/down` as commands, on a private stack.

Runs the real CLI in subprocesses with its own CONCORD_HOME and free ports, so it
never touches a stack the developer has running.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.processes import free_port

pytestmark = pytest.mark.e2e

# The installed console script, as users run it (.venv/bin/concord).
CONCORD = [str(Path(sys.executable).with_name("concord"))]


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {
        **os.environ,
        "CONCORD_HOME": str(tmp_path / "home"),
        "CONCORD_KAFKA_PORT": str(free_port()),
        "CONCORD_KAFKA_CONTROLLER_PORT": str(free_port()),
        "CONCORD_TRINO_PORT": str(free_port()),
        "CONCORD_TRINO_HTTPS_PORT": str(free_port()),
        "CONCORD_METRICS_PORT": str(free_port()),
        "CONCORD_PROMETHEUS_PORT": str(free_port()),
        "CONCORD_FLINK_METRICS_PORT": str(free_port()),
        "CONCORD_KAFKA_METRICS_PORT": str(free_port()),
        "CONCORD_TRINO_HEAP": "2G",
    }
    yield env
    # Whatever happened in the test, nothing is left running.
    subprocess.run([*CONCORD, "down"], env=env, capture_output=True, check=False, timeout=120)


def run(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CONCORD, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_up_status_smoke_down_lifecycle(env: dict[str, str]) -> None:
    first = run(env, "up")
    assert first.returncode == 0, first.stderr
    assert "kafka: started" in first.stdout and "trino: started" in first.stdout
    # Monitoring is on by default: the exporter and Prometheus come up with the stack.
    assert "exporter: started" in first.stdout and "prometheus: started" in first.stdout

    second = run(env, "up")
    assert second.returncode == 0, second.stderr
    assert "already running" in second.stdout and "everything was already up" in second.stdout

    status = run(env, "status", "--json")
    assert status.returncode == 0, status.stderr
    components = {c["component"]: c for c in json.loads(status.stdout)["components"]}
    assert components["kafka"]["healthy"] and components["trino"]["healthy"]
    assert components["trino"]["version"] == "476"
    assert components["prometheus"]["healthy"] and components["exporter"]["healthy"]
    assert components["prometheus"]["version"].startswith("2.")
    assert all(c["pid"] for c in components.values())

    smoke = run(env, "smoke", "--messages", "2000")
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    assert "smoke: OK" in smoke.stdout

    schemas = run(env, "query", "SHOW SCHEMAS FROM lake", "--format", "json")
    assert schemas.returncode == 0, schemas.stderr
    names = {row["Schema"] for row in json.loads(schemas.stdout)}
    assert {"raw", "speed", "batch", "meta", "serving"} <= names

    # Before any layer ran: the serving views exist, over empty tables, and answer.
    refresh = run(env, "serve", "refresh")
    assert refresh.returncode == 0, refresh.stdout + refresh.stderr
    assert "lake.serving.bars_1m: view" in refresh.stdout
    assert "lake.batch.bars_1m: registered (created empty)" in refresh.stdout
    empty = run(env, "query", "SELECT count(*) AS n FROM lake.serving.bars_1m", "--format", "json")
    assert empty.returncode == 0 and json.loads(empty.stdout) == [{"n": 0}], empty.stderr

    down = run(env, "down")
    assert down.returncode == 0 and "stopped prometheus, exporter, trino, kafka" in down.stdout
    pids = [c["pid"] for c in components.values()]
    assert all(not Path(f"/proc/{pid}").exists() for pid in pids)

    again = run(env, "down")
    assert again.returncode == 0 and "nothing was running" in again.stdout
    after = run(env, "status")
    assert after.returncode == 1 and "DOWN" in after.stdout


def test_up_with_a_busy_port_names_it_and_leaves_nothing_running(env: dict[str, str]) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", int(env["CONCORD_TRINO_PORT"])))
        blocker.listen()
        result = run(env, "up")
    assert result.returncode == 1
    assert f"port {env['CONCORD_TRINO_PORT']}" in result.stderr
    assert "already in use" in result.stderr
    # Kafka had started before Trino failed: it was stopped again.
    status = run(env, "status", "--json")
    components = json.loads(status.stdout)["components"]
    assert all(c["pid"] is None and not c["healthy"] for c in components)
