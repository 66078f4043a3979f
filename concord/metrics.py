"""The platform's Prometheus exporter: what `concord status` reads, as metrics.

    python -m concord.metrics      (`concord up` starts it when CONCORD_MONITORING is on)
    http://127.0.0.1:$CONCORD_METRICS_PORT/metrics

A background thread reads the platform every scrape interval (concord.stack.status and
concord.status.layer_status: one implementation, two outputs); a scrape serves the
newest reading at once. It answers also when Kafka or Trino is
down: `concord_component_up` then says so, and the figures that need the missing part
are left out (never a stale value). The metrics, labels in braces:

  concord_component_up{component}          1 running/healthy, 0 not: kafka, trino, speed
                                           (the speed job), batch_loop (once one has run)
  concord_status_error{part}               1 when a part of the status could not be read
  concord_kafka_topic_messages_total       messages ever written to the trades topic
  concord_kafka_lag_messages{layer}        speed: past the job's last checkpoint; batch:
                                           not ingested yet
  concord_kafka_lag_seconds{layer}         age of the oldest of those messages
  concord_speed_checkpoint_age_seconds     the speed job's newest complete checkpoint
  concord_speed_rejects_5m{reason}         contract rejects of the last 5 min
  concord_speed_commits_total{table}, concord_speed_committed_records_total{table},
  concord_speed_commit_seconds{table},     the committers (a histogram), since the job started
  concord_speed_commit_conflicts_total{table}  commits refused for a concurrent one, retried
  concord_ingest_last_run_age_seconds      the last committed ingest run
  concord_ingest_last_run_messages{outcome}  accepted, rejected, duplicates of that run
  concord_batch_interval_seconds, concord_batch_lateness_seconds
  concord_batch_last_run_age_seconds, concord_batch_last_run_duration_seconds,
  concord_batch_last_run_ok,
  concord_batch_last_run_phase_seconds{phase}  the batch loop's last run (ingest, ...)
  concord_boundary_age_seconds{view}       how far behind now the batch rows end
  concord_freshness_seconds                age of the newest trade in serving.ticker
  concord_reconcile_windows_compared, concord_reconcile_unexplained_windows,
  concord_reconcile_age_seconds            `concord reconcile`'s last result
  concord_table_files{table}, concord_table_log_entries{table}   the speed tables
  concord_scrape_duration_seconds          how long reading it all took
  concord_snapshot_age_seconds             how old the figures served are (a background
                                           thread reads them every scrape interval)
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from infra.processes import Service
from shared.config import Settings, load_settings


def exporter_service(settings: Settings) -> Service:
    return Service("exporter", settings.run_dir, settings.log_dir / "exporter" / "exporter.log",
                   (settings.metrics_port,))


def snapshot(settings: Settings) -> dict[str, Any]:
    """`concord status --json`'s content: the components and the layers."""
    from concord import stack
    from concord.status import layer_status

    rows = stack.status(settings, monitoring=False)
    healthy = {r["component"]: r["healthy"] for r in rows}
    return {"components": rows,
            "layers": layer_status(settings, kafka_up=healthy.get("kafka", False),
                                   trino_up=healthy.get("trino", False))}


def _gauge(name: str, doc: str, value: float | None, **labels: str) -> Iterator[Metric]:
    if value is None:
        return
    family = GaugeMetricFamily(name, doc, labels=list(labels))
    family.add_metric(list(labels.values()), float(value))
    yield family


def _labelled(name: str, doc: str, label: str, values: dict[str, Any]) -> Iterator[Metric]:
    family = GaugeMetricFamily(name, doc, labels=[label])
    for key, value in values.items():
        if value is not None:
            family.add_metric([key], float(value))
    yield family


def metrics(snap: dict[str, Any], took_s: float) -> Iterator[Metric]:
    """The metric families of a snapshot (pure: the unit tests feed it dicts)."""
    layers = snap["layers"]
    speed, batch = layers.get("speed", {}), layers.get("batch", {})
    serving, tables = layers.get("serving", {}), layers.get("tables", {})
    up = {r["component"]: r["healthy"] for r in snap["components"]}
    if "error" not in speed:
        up["speed"] = bool(speed.get("running"))
    if "loop" in batch:
        up["batch_loop"] = bool(batch.get("loop_running"))
    yield from _labelled("concord_component_up", "1 when the part runs and answers",
                         "component", {k: int(v) for k, v in up.items()})
    errors = {part: int("error" in layers.get(part, {})) for part in
              ("speed", "batch", "serving", "tables")}
    errors["kafka"] = int("kafka_error" in layers)
    errors["freshness"] = int("freshness_error" in serving)
    yield from _labelled("concord_status_error", "1 when this part could not be read",
                         "part", errors)

    if "kafka_messages" in layers:
        total = CounterMetricFamily("concord_kafka_topic_messages",
                                    "messages ever written to the trades topic")
        total.add_metric([], float(layers["kafka_messages"]))
        yield total
    for unit, key in (("messages", "kafka_lag"), ("seconds", "kafka_lag_s")):
        yield from _labelled(f"concord_kafka_lag_{unit}", f"Kafka lag of each layer, {unit}",
                             "layer", {"speed": speed.get(key), "batch": batch.get(key)})

    yield from _gauge("concord_speed_checkpoint_age_seconds",
                      "age of the speed job's newest complete checkpoint",
                      speed.get("checkpoint_age_s"))
    yield from _labelled("concord_speed_rejects_5m",
                         "messages the speed layer's contract rejected in the last 5 min",
                         "reason", speed.get("rejects_last_5m_by_reason", {}))
    yield from _committers(speed.get("committers", {}))

    yield from _gauge("concord_ingest_last_run_age_seconds", "age of the last ingest run",
                      batch.get("last_ingest_age_s"))
    yield from _labelled("concord_ingest_last_run_messages",
                         "messages of the last ingest run, by outcome", "outcome",
                         batch.get("last_run_messages", {}))
    yield from _gauge("concord_batch_interval_seconds", "period of the batch loop",
                      batch.get("interval_s"))
    yield from _gauge("concord_batch_lateness_seconds",
                      "how far behind the newest trade a batch run keeps the boundary",
                      batch.get("lateness_s"))
    loop = batch.get("loop", {})
    yield from _gauge("concord_batch_last_run_age_seconds",
                      "since the batch loop's last run ended", loop.get("last_run_age_s"))
    yield from _gauge("concord_batch_last_run_duration_seconds",
                      "how long the batch loop's last run took", loop.get("duration_s"))
    yield from _labelled("concord_batch_last_run_phase_seconds",
                         "seconds of each phase of the batch loop's last run (ingest, plan, "
                         "recompute, publish, maintain)", "phase", loop.get("phases") or {})
    if loop.get("ok") is not None:
        yield from _gauge("concord_batch_last_run_ok", "1 when the last batch run completed",
                          int(bool(loop["ok"])))

    yield from _labelled("concord_boundary_age_seconds",
                         "how far behind now each view's batch rows end", "view",
                         {k: v["boundary_age_s"] for k, v in serving.get("views", {}).items()})
    yield from _gauge("concord_freshness_seconds",
                      "age of the newest trade in serving.ticker", serving.get("freshness_s"))
    reconciled = serving.get("reconcile", {})
    for name, key, doc in (
            ("windows_compared", "windows_compared", "windows the last reconcile compared"),
            ("unexplained_windows", "unexplained", "windows it could not explain"),
            ("age_seconds", "age_s", "since the last reconcile")):
        yield from _gauge(f"concord_reconcile_{name}", doc, reconciled.get(key))

    if "error" not in tables:
        yield from _labelled("concord_table_files", "data files of each speed table", "table",
                             {k: v["files"] for k, v in tables.items()})
        yield from _labelled("concord_table_log_entries",
                             "Delta log entries since the table's last checkpoint", "table",
                             {k: v["log_entries"] for k, v in tables.items()})
    yield from _gauge("concord_scrape_duration_seconds",
                      "how long reading the platform took for this scrape", took_s)


def _committers(committers: dict[str, dict[str, Any]]) -> Iterator[Metric]:
    if not committers:
        return
    commits = CounterMetricFamily("concord_speed_commits", "Delta commits of each committer",
                                  labels=["table"])
    records = CounterMetricFamily("concord_speed_committed_records",
                                  "records the committers wrote", labels=["table"])
    latency = HistogramMetricFamily("concord_speed_commit_seconds",
                                    "time of each Delta commit", labels=["table"])
    conflicts = CounterMetricFamily("concord_speed_commit_conflicts",
                                    "commits Delta refused for a concurrent one, retried",
                                    labels=["table"])
    for table, c in committers.items():
        commits.add_metric([table], c["commits"])
        conflicts.add_metric([table], c.get("conflicts", 0))
        records.add_metric([table], c["records"])
        cumulative, buckets = 0, []
        for bound, count in zip([*c["buckets"], float("inf")], c["latency_counts"], strict=True):
            cumulative += count
            buckets.append(("+Inf" if bound == float("inf") else repr(float(bound)), cumulative))
        latency.add_metric([table], buckets, sum_value=c["seconds"])
    yield from (commits, records, latency, conflicts)


class PlatformCollector(Collector):
    """Serves the newest snapshot, which a background thread takes every scrape interval:
    a scrape never waits for Kafka, the lake or Trino (on a loaded box reading them all
    took longer than Prometheus' scrape timeout, and the target went down with the box
    busy, when it is most needed). `concord_snapshot_age_seconds` says how old it is."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._latest: tuple[float, float, dict[str, Any]] | None = None  # at, took, snap

    def refresh(self) -> None:
        began = time.monotonic()
        snap = snapshot(self.settings)
        with self._lock:
            self._latest = (time.monotonic(), time.monotonic() - began, snap)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            began = time.monotonic()
            try:
                self.refresh()
            except Exception as exc:  # noqa: BLE001 - said; the next round tries again
                print(f"concord exporter: reading the platform failed: {exc}", flush=True)
            stop.wait(max(1.0, self.settings.scrape_interval_s - (time.monotonic() - began)))

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            latest = self._latest
        if latest is None:
            return []
        at, took, snap = latest
        return [*metrics(snap, took),
                *_gauge("concord_snapshot_age_seconds", "age of the figures served",
                        round(time.monotonic() - at, 3))]


def serve(settings: Settings) -> None:
    """Serve /metrics on 127.0.0.1 until SIGTERM or SIGINT."""
    from prometheus_client import start_http_server

    registry = CollectorRegistry(auto_describe=False)
    collector = PlatformCollector(settings)
    registry.register(collector)
    server, thread = start_http_server(settings.metrics_port, addr="127.0.0.1",
                                       registry=registry)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"concord exporter: http://127.0.0.1:{settings.metrics_port}/metrics", flush=True)
    reader = threading.Thread(target=collector.run, args=(stop,), name="snapshots", daemon=True)
    reader.start()
    stop.wait()
    server.shutdown()
    thread.join(5)


def main() -> int:
    serve(load_settings())
    return 0


if __name__ == "__main__":
    sys.exit(main())
