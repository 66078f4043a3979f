"""Monitoring end to end, through Prometheus' HTTP query API: Prometheus (Debian's
binary) scrapes the platform's exporter, the speed job's Flink, the Kafka broker's JMX
agent and Trino; the series exist with sane values after a speed job, a batch run and a
reconcile; when the speed job stops, the "component down" alert fires (the test's rules
have every `for:` at 5 s; scrapes every 10 s, the default), and `concord status` says so.

The exporter and Prometheus run here for a home of the test's own (own_home: its own
lake, topic and speed job), beside the session's Kafka and Trino, as `concord up` starts
them."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from batch_layer.run import BatchRun
from concord.metrics import exporter_service
from concord.stack import start_exporter
from harness.stack import own_home
from infra.kafka import ensure_topic
from infra.monitoring import (
    prometheus_api,
    prometheus_service,
    prometheus_targets,
    start_prometheus,
)
from infra.processes import free_port
from producers.market import MarketConfig
from producers.produce import ProduceReport, generated, produce
from serving_layer.refresh import refresh
from shared.config import Settings
from speed_layer import control

pytestmark = pytest.mark.e2e
CONCORD = str(Path(sys.executable).with_name("concord"))
JOBS = {"prometheus", "concord", "flink", "kafka", "trino"}


def series(settings: Settings, promql: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = prometheus_api(
        settings, "/api/v1/query?query=" + quote(promql))["result"]
    return result


def value(settings: Settings, promql: str) -> float | None:
    found = series(settings, promql)
    assert len(found) <= 1, (promql, found)
    return float(found[0]["value"][1]) if found else None


def number(settings: Settings, promql: str) -> float:
    got = value(settings, promql)
    assert got is not None, f"no series for {promql}"
    return got


def wait_for(what: str, check: Callable[[], Any], timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"{what}: not after {timeout_s:.0f}s"
        time.sleep(2)


def test_prometheus_sees_every_part_and_fires_when_the_speed_job_stops(
    stack: Settings, spark: Any, unique: str, tmp_path: Path
) -> None:
    settings = own_home(stack, tmp_path, topic=f"e2e-mon-{unique}", metrics_port=free_port(),
                        prometheus_port=free_port(), flink_metrics_port=free_port(),
                        alert_for_s=5)
    assert settings.monitoring and stack.monitoring  # the session's Kafka has its agent
    ensure_topic(settings, settings.topic, 2)
    refresh(settings)
    env = {**os.environ, **settings.as_env()}
    done = threading.Event()
    start_exporter(settings)
    start_prometheus(settings)
    try:
        print(control.start(settings))
        # A burst of history (5% malformed), then a live trickle for freshness.
        produce(settings, generated(MarketConfig(seed=31, malformed_fraction=0.05),
                                    count=3000, duration_s=None), rate=None, report=ProduceReport(),
                progress=None)

        def trickle() -> None:
            records = generated(MarketConfig(seed=32), count=None, duration_s=600, live=True)
            produce(settings, itertools.takewhile(lambda _: not done.is_set(), records),
                    rate=20, report=ProduceReport(), progress=None)

        threading.Thread(target=trickle, daemon=True).start()
        BatchRun(settings, spark).run()
        refresh(settings)
        reconciled = subprocess.run([CONCORD, "reconcile", "--json"], env=env,
                                    capture_output=True, text=True, timeout=300, check=False)
        assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr

        # Every target up.
        wait_for("every target scraped and up",
                 lambda: prometheus_targets(settings) == dict.fromkeys(JOBS, "up"), 120)

        # The platform's own figures, as the exporter read them.
        wait_for("the exporter's figures after the batch run and the reconcile", lambda: value(
            settings, "concord_reconcile_windows_compared") is not None, 60)
        assert value(settings, 'concord_component_up{component="speed"}') == 1
        assert value(settings, 'concord_component_up{component="kafka"}') == 1
        assert value(settings, 'concord_component_up{component="trino"}') == 1
        assert number(settings, "concord_kafka_topic_messages_total") >= 3000
        speed_lag = value(settings, 'concord_kafka_lag_messages{layer="speed"}')
        assert speed_lag is not None and 0 <= speed_lag < 3000
        assert number(settings, 'concord_ingest_last_run_messages{outcome="accepted"}') > 2000
        assert number(settings, 'concord_ingest_last_run_messages{outcome="rejected"}') > 50
        assert value(settings, 'concord_boundary_age_seconds{view="bars_1m"}') is not None
        assert value(settings, "concord_reconcile_unexplained_windows") == 0
        assert number(settings, "sum(concord_speed_rejects_5m)") > 50
        assert number(settings, 'sum(concord_speed_commits_total)') > 0
        assert number(settings, 'concord_table_files{table="speed.bars_1m"}') > 0
        freshness = wait_for("freshness from the live trickle", lambda: value(
            settings, "concord_freshness_seconds"), 60)
        assert 0 <= freshness < 60
        assert value(settings, "sum(concord_status_error)") == 0
        # The engines' own metrics.
        assert number(settings, 'sum(flink_taskmanager_job_task_operator_numRecordsIn)') > 0
        assert number(settings, "max(flink_jobmanager_job_numberOfCompletedCheckpoints)") > 0
        assert number(settings, "kafka_server_brokertopicmetrics_messagesin_total{topic="
                      f'"{settings.topic}"' + "}") >= 3000
        assert number(settings, 'count({job="trino"})') > 100
        assert number(settings, "trino_execution_name_QueryManager_CompletedQueries") > 0
        # Nothing is down yet. (Other alerts may rightly fire here: the burst's 5% of
        # malformed messages sits at the reject-rate threshold, and a loaded box can hold
        # freshness above 5 s for the test's 5 s `for:`.)
        assert value(settings, 'count(ALERTS{alertname="ConcordComponentDown", '
                     'alertstate="firing"})') is None

        # The speed job stops: Prometheus sees the target and the component go down, and
        # after `for:` the alert fires; `concord status` shows it.
        print(control.stop(settings))

        def firing() -> set[str]:
            return {r["metric"]["component"] for r in series(
                settings, 'ALERTS{alertname="ConcordComponentDown", alertstate="firing"}')}

        assert wait_for("ConcordComponentDown firing", lambda: {"speed", "flink"} <= firing(),
                        90)
        status = subprocess.run([CONCORD, "status"], env=env, capture_output=True, text=True,
                                timeout=120, check=False)
        assert f"monitoring: Prometheus {settings.prometheus_url}: 4 of 5 targets up " \
               "(down: flink)" in status.stdout, status.stdout
        assert "monitoring: FIRING ConcordComponentDown: speed is down" in status.stdout
    finally:
        done.set()
        control.stop(settings)
        prometheus_service(settings).stop()
        exporter_service(settings).stop()
