"""The exporter's metrics from a status snapshot (concord.metrics.metrics), rendered and
parsed back by prometheus_client as Prometheus would read them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector, CollectorRegistry

from concord.commands.stack import layer_lines, monitoring_lines
from concord.metrics import metrics
from speed_layer.delta_committer import COMMIT_BUCKETS, CommitStats


def scrape(snap: dict[str, Any]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    class Static(Collector):
        def collect(self) -> Iterable[Any]:
            return list(metrics(snap, 0.25))

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Static())
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def committer() -> dict[str, Any]:
    stats = CommitStats()
    for seconds in (0.02, 0.07, 0.3, 12.0):
        stats.count(10, seconds)
    return stats.as_dict()


HEALTHY: dict[str, Any] = {
    "components": [{"component": "kafka", "healthy": True},
                   {"component": "trino", "healthy": True}],
    "layers": {
        "kafka_messages": 123_456,
        "speed": {"running": True, "pid": 42, "kafka_lag": 17, "kafka_lag_s": 0.8,
                  "checkpoint_age_s": 1.2, "rejects_last_5m": 9,
                  "rejects_last_5m_by_reason": {"bad_price": 4, "malformed_json": 5},
                  "committers": {"speed.bars_1m": committer()}},
        "batch": {"last_ingest_run": 7, "last_ingest_age_s": 33.0, "kafka_lag": 5000,
                  "kafka_lag_s": 31.5, "last_run_records": 6000, "last_run_reject_rate": 0.01,
                  "last_run_messages": {"accepted": 5900, "rejected": 60, "duplicates": 40},
                  "interval_s": 180, "lateness_s": 120, "loop_running": True,
                  "loop": {"every_s": 180, "started_at": 1.0, "finished_at": 2.0,
                           "duration_s": 41.5, "ok": True, "error": None,
                           "phases": {"ingest": 12.5, "recompute": 20.0},
                           "last_run_age_s": 12.0}},
        "serving": {"views": {"bars_1m": {"boundary": "2026-12-03T10:00:00+00:00",
                                          "boundary_age_s": 300.0},
                              "flow_5m": {"boundary": None, "boundary_age_s": None}},
                    "freshness_s": 1.4,
                    "reconcile": {"at": 1.0, "windows_compared": 384, "windows_equal": 380,
                                  "unexplained": 0, "age_s": 60.0}},
        "tables": {"speed.bars_1m": {"files": 12, "version": 900, "log_entries": 4}},
    },
}


def test_a_healthy_platform_as_metrics() -> None:
    got = scrape(HEALTHY)
    assert got[("concord_component_up", (("component", "speed"),))] == 1
    assert got[("concord_component_up", (("component", "batch_loop"),))] == 1
    assert got[("concord_kafka_topic_messages_total", ())] == 123_456
    assert got[("concord_kafka_lag_messages", (("layer", "batch"),))] == 5000
    assert got[("concord_kafka_lag_seconds", (("layer", "speed"),))] == 0.8
    assert got[("concord_speed_rejects_5m", (("reason", "malformed_json"),))] == 5
    assert got[("concord_ingest_last_run_messages", (("outcome", "duplicates"),))] == 40
    assert got[("concord_boundary_age_seconds", (("view", "bars_1m"),))] == 300
    assert ("concord_boundary_age_seconds", (("view", "flow_5m"),)) not in got  # no boundary
    assert got[("concord_freshness_seconds", ())] == 1.4
    assert got[("concord_reconcile_unexplained_windows", ())] == 0
    assert got[("concord_reconcile_windows_compared", ())] == 384
    assert got[("concord_batch_last_run_ok", ())] == 1
    assert got[("concord_batch_last_run_phase_seconds", (("phase", "ingest"),))] == 12.5
    assert got[("concord_table_log_entries", (("table", "speed.bars_1m"),))] == 4
    assert all(v == 0 for (name, _), v in got.items() if name == "concord_status_error")
    # The committer's latency histogram: cumulative buckets, the slow one only in +Inf.
    table = ("table", "speed.bars_1m")
    assert got[("concord_speed_commits_total", (table,))] == 4
    assert got[("concord_speed_commit_conflicts_total", (table,))] == 0
    assert got[("concord_speed_committed_records_total", (table,))] == 40
    assert got[("concord_speed_commit_seconds_bucket", (("le", "0.05"), table))] == 1
    assert got[("concord_speed_commit_seconds_bucket", (("le", "0.1"), table))] == 2
    assert got[("concord_speed_commit_seconds_bucket", (("le", "10.0"), table))] == 3
    assert got[("concord_speed_commit_seconds_bucket", (("le", "+Inf"), table))] == 4
    assert abs(got[("concord_speed_commit_seconds_sum", (table,))] - 12.39) < 1e-9


def test_with_kafka_and_trino_down_it_still_answers_and_says_so() -> None:
    snap = {"components": [{"component": "kafka", "healthy": False},
                           {"component": "trino", "healthy": False}],
            "layers": {"kafka_error": "Kafka is down: lags unknown",
                       "speed": {"running": False, "pid": None, "checkpoint_age_s": 80.0,
                                 "rejects_last_5m": 0, "rejects_last_5m_by_reason": {}},
                       "batch": {"error": "cannot read the ledger"},
                       "serving": {"views": {}, "freshness_error": "Trino is down"},
                       "tables": {}}}
    got = scrape(snap)
    assert got[("concord_component_up", (("component", "kafka"),))] == 0
    assert got[("concord_component_up", (("component", "speed"),))] == 0
    assert got[("concord_status_error", (("part", "kafka"),))] == 1
    assert got[("concord_status_error", (("part", "batch"),))] == 1
    assert got[("concord_status_error", (("part", "freshness"),))] == 1
    # Figures that need the missing parts are absent, never a stale or made-up value.
    names = {name for name, _ in got}
    assert not names & {"concord_freshness_seconds", "concord_kafka_lag_messages",
                        "concord_kafka_topic_messages_total", "concord_batch_interval_seconds"}


def test_commit_latency_buckets_are_upper_bounds() -> None:
    stats = CommitStats()
    stats.count(5, COMMIT_BUCKETS[0])  # on the bound: in that bucket (le)
    stats.count(5, COMMIT_BUCKETS[-1] + 1)
    assert stats.latency_counts[0] == 1 and stats.latency_counts[-1] == 1
    assert stats.commits == 2 and stats.records == 10


def test_status_lines_show_the_new_figures() -> None:
    lines = "\n".join(layer_lines(HEALTHY["layers"]))
    assert "Kafka lag 17 messages (0.8s)" in lines
    assert "(bad_price 4, malformed_json 5)" in lines
    assert "committer speed.bars_1m: 4 commits, 40 records" in lines
    assert "batch:   loop running, every 180s; last run ok in 42s" in lines
    assert "serving: freshness: newest trade 1.4s ago" in lines
    assert "serving: last reconcile 1m00s ago: 384 windows compared, 0 unexplained" in lines
    assert "tables:  speed.bars_1m: 12 files, 4 log entries" in lines
    prom = {"component": "prometheus", "healthy": True, "endpoint": "http://127.0.0.1:9090",
            "targets": {"concord": "up", "flink": "down", "kafka": "up"},
            "alerts": [{"name": "ConcordComponentDown", "state": "firing",
                        "summary": "flink is down"}]}
    assert monitoring_lines([prom]) == [
        "monitoring: Prometheus http://127.0.0.1:9090: 2 of 3 targets up (down: flink)",
        "monitoring: FIRING ConcordComponentDown: flink is down"]
    assert monitoring_lines([]) == ["monitoring: off (CONCORD_MONITORING=0)"]
