"""Speed layer: catch-up against plain Flink SQL, freshness into the serving views,
stability over time, the highest sustained rate.

0. Catch-up (`--only catch-up`): --backlog messages produced before a job starts; how
   fast its Kafka lag falls to zero, for the plain Flink SQL job (bench.flink_baseline)
   and the speed job, one after the other on the same topic, at each --parallelism;
   prints both rates and their ratio.
1. Freshness (`--only freshness`) at --rate trades/s of a live generated stream (`concord
   produce --live`, its own process, as in the demo) with the demo's batch loop (`batch
   run --every --batch-every`, 0: none): once a second a marker trade (exchange `bench`,
   symbol `MARK-USD`, ts = now); one poller per view queries serving.ticker and the
   marker's current bar of serving.bars_1m, again 100 ms after each answer. Freshness =
   first time the marker is visible - time the broker acknowledged it (the poll's own
   query time included). Prints p50/p99/max per stage (written by the job, committed
   in its partials topic, in the Delta table, through Trino), split by whether a batch
   run was in progress, markers never seen, the pollers' query times and Trino's own
   phases, and the CPU each component used. With --report-every, a line per stretch
   (freshness, the speed tables' files and log, the job's RSS and lag); over 10 minutes
   or more, the first 5 minutes against the last 5 (stability).
2. Sustained (`--only sustained`): live trades at growing rates (--steps), each for
   --step-seconds; the speed job's Kafka lag at the start and the end of each step.
   "Held" = lag grew by less than two seconds' worth of messages.

Runs on a private stack (free ports, temp home) with the real speed job (as `concord
speed start` runs it).

    .venv/bin/python -m bench.speed --only freshness [--rate 5000] [--seconds 60]
        [--batch-every 180] [--report-every 60] [--emit-ms 250] [--checkpoint-ms 1000]
    .venv/bin/python -m bench.speed --only catch-up [--backlog 1000000] [--parallelism 1,2]
    .venv/bin/python -m bench.speed --only sustained [--steps 10000,20000,30000,40000]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow.dataset as pc

from concord import demo
from harness.stack import own_home, private_stack
from infra import kafka
from infra.kafka import ensure_topic, group_lag
from infra.processes import Service, cpu_seconds, rss_bytes
from infra.services import kafka_service, trino_service
from producers.market import MarketConfig
from producers.produce import ProduceReport, generated, produce
from serving_layer.refresh import refresh
from serving_layer.trino import connect, query
from shared.config import REPO_ROOT, Settings
from shared.partials import partials_topic
from shared.tables import open_table
from speed_layer import control
from speed_layer.job import GROUP_ID

WARM_UP_S = 30


def lag(settings: Settings) -> int:
    """Messages of the trades topic the speed job has not committed yet (all partitions)."""
    return group_lag(settings, GROUP_ID, settings.topic)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class BatchLoop:
    """`concord batch run --every N` as the demo runs it (concord.demo's batch service),
    and when each of its runs was in progress (its log's start and done lines, as they
    appear)."""

    def __init__(self, settings: Settings, every_s: int) -> None:
        self.svc = demo.batch_service(settings)
        self.runs: list[tuple[float, float]] = []
        self._started: float | None = None
        self.svc.start([sys.executable, "-m", "concord.cli", "batch", "run", "--every",
                        str(every_s)], env={**os.environ, **settings.as_env()}, cwd=REPO_ROOT,
                       ready=lambda: True, timeout_s=5)
        threading.Thread(target=self._follow, daemon=True).start()

    def _follow(self) -> None:
        with open(self.svc.log_file) as log:
            while True:
                line = log.readline()
                if not line:
                    time.sleep(0.05)
                elif line.startswith("batch run: done"):
                    if self._started is not None:
                        self.runs.append((self._started, time.time()))
                    self._started = None
                elif re.match(r"batch run: \d{4}-", line):
                    self._started = time.time()

    def running_at(self, moment: float) -> bool:
        spans = [*self.runs, *([(self._started, math.inf)] if self._started else [])]
        return any(lo <= moment <= hi for lo, hi in spans)

    def stop(self) -> None:
        self.svc.stop()


class CpuShare:
    """Where the box's CPU went between `start()` and `report()`, per component (each
    process with its children: the speed job's JVM and Python worker, Spark's JVM)."""

    def __init__(self, settings: Settings, loop: BatchLoop | None) -> None:
        self.pids = {"speed job": control.service(settings).pid(),
                     "kafka": kafka_service(settings).pid(),
                     "trino": trino_service(settings).pid(),
                     "live stream (concord produce)": demo.stream_service(settings).pid(),
                     "bench (markers, pollers)": os.getpid(),
                     "batch loop": loop.svc.pid() if loop else None}
        self.began: dict[str, float] = {}
        self.at = 0.0

    def start(self) -> None:
        self.at = time.monotonic()
        self.began = {k: self._used(k, p) for k, p in self.pids.items() if p}

    @staticmethod
    def _used(name: str, pid: int) -> float:
        # The stack's servers are children of this process: the bench counts itself alone.
        return cpu_seconds(pid, children=not name.startswith("bench"))

    def report(self) -> None:
        wall = time.monotonic() - self.at
        used = {k: self._used(k, p) - self.began.get(k, 0.0) for k, p in self.pids.items() if p}
        print(f"CPU over {wall:.0f}s (2 cores = 200%): " + ", ".join(
            f"{k} {v / wall:.0%}" for k, v in sorted(used.items(), key=lambda kv: -kv[1])),
            flush=True)


def table_shape(settings: Settings, name: str) -> tuple[int, int, int]:
    """(active files, Parquet files on disk, log entries since the last checkpoint: what a
    reader replays on top of it) of the speed table `name`."""
    from deltalake import DeltaTable

    table = DeltaTable(settings.table_uri("speed", name))
    root = settings.lake_path / "speed" / name
    log = root / "_delta_log"
    last = log / "_last_checkpoint"
    checkpoint = json.loads(last.read_text())["version"] if last.exists() else -1
    return (len(table.file_uris()), sum(1 for _ in root.rglob("*.parquet")),
            table.version() - checkpoint)


def freshness(settings: Settings, rate: int, seconds: int, batch_every: int,
              report_every_s: int = 0) -> None:
    """Freshness at `rate` for `seconds`; with `report_every_s`, a line every so often
    (freshness of that stretch, the speed tables' shape, the job's RSS) and, at the end,
    the first 5 minutes against the last 5."""
    sent: dict[int, float] = {}  # marker ts -> wall time sent
    # Where each marker became visible, stage by stage: written by the speed job to its
    # partials topic (the record's timestamp), visible there (read_committed: after the
    # checkpoint that covers it), the Delta table (delta-rs),
    # then through Trino (bars_1m's current bar and the ticker).
    seen: dict[str, dict[int, float]] = {"emitted": {}, "kafka": {}, "delta": {}, "bars_1m": {},
                                         "ticker": {}}
    stop = threading.Event()

    def mark(stage: str, counts: dict[int, int], now: float) -> None:
        """Markers of each minute counted `counts[minute]` times are seen at `now`."""
        by_minute: dict[int, list[int]] = {}
        for ts in sorted(sent):
            by_minute.setdefault(ts // 60_000 * 60_000, []).append(ts)
        for minute, stamps in by_minute.items():
            for ts in stamps[:counts.get(minute, 0)]:
                seen[stage].setdefault(ts, now)

    def kafka_stage() -> None:
        consumer = kafka.consumer(settings, isolation_level="read_committed",
                                  auto_offset_reset="latest", group_id=None,
                                  consumer_timeout_ms=200)
        consumer.subscribe([partials_topic(settings)])
        counts: dict[int, int] = {}
        while not stop.is_set():
            for records in consumer.poll(timeout_ms=50).values():
                for rec in records:
                    row = json.loads(rec.value)
                    if row["exchange"] == "bench":
                        minute = int(datetime.fromisoformat(row["window_start"] + "+00:00")
                                     .timestamp() * 1000)
                        counts[minute] = counts.get(minute, 0) + int(row["count"])
                        # When the job wrote the row (its Kafka timestamp), before the
                        # checkpoint that commits it.
                        mark("emitted", counts, rec.timestamp / 1000)
            mark("kafka", counts, time.time())
        consumer.close()

    def delta_stage() -> None:
        uri = settings.table_uri("speed", "bars_1m")
        while not stop.is_set():
            table = open_table(uri)
            if table is not None:
                rows = table.to_pyarrow_dataset().to_table(
                    columns=["window_start", "trade_count"],
                    filter=pc.field("exchange") == "bench").to_pylist()
                counts: dict[int, int] = {}
                for r in rows:
                    minute = int(r["window_start"].timestamp() * 1000)
                    counts[minute] = counts.get(minute, 0) + int(r["trade_count"])
                mark("delta", counts, time.time())
            time.sleep(0.2)  # the stage's own reads cost CPU the job and Trino need

    def markers() -> None:
        """A marker trade a second, each acknowledged by the broker before the next; sent =
        when the broker acknowledged it (one producer for all: no connection per marker)."""
        producer = kafka.confluent_producer(settings, **{"linger.ms": 0})
        i = 0
        until = time.time() + seconds
        while not stop.is_set() and time.time() < until:
            ts = int(time.time() * 1000)
            value = (f'{{"exchange":"bench","symbol":"MARK-USD","trade_id":"m{i}",'
                     f'"price":"1.00000000","qty":"1.00000000","side":"buy","ts":{ts}}}')
            producer.produce(settings.topic, value.encode(), key=b"bench:MARK-USD")
            producer.flush(30)
            sent[ts] = time.time()
            i += 1
            time.sleep(max(0.0, ts / 1000 + 1.0 - time.time()))
        producer.flush(30)

    took: dict[str, list[float]] = {"ticker": [], "bars_1m": []}  # each poll's query time

    def poll(view: str, sql: str, seen_at: Callable[[list[list[Any]], float], None]) -> None:
        """One reader per view, as a desk page's reader would be: query, note what is
        visible, again after 100 ms."""
        conn = connect(settings)
        cur = conn.cursor()
        while not stop.is_set():
            began = time.time()
            cur.execute(sql)
            rows = cur.fetchall()
            now = time.time()
            took[view].append(now - began)
            seen_at(rows, now)
            time.sleep(0.1)
        conn.close()  # type: ignore[no-untyped-call]

    def ticker_seen(rows: list[list[Any]], now: float) -> None:
        newest = int(rows[0][0]) if rows else 0
        for ts in list(sent):
            if ts <= newest:
                seen["ticker"].setdefault(ts, now)

    def bars_seen(rows: list[list[Any]], now: float) -> None:
        mark("bars_1m", {int(w): int(c) for w, c in rows}, now)

    ticker_sql = ("SELECT to_unixtime(ts) * 1000 FROM lake.serving.ticker "
                  "WHERE exchange = 'bench' AND symbol = 'MARK-USD'")
    bars_sql = ("SELECT to_unixtime(window_start) * 1000, trade_count "
                "FROM lake.serving.bars_1m WHERE exchange = 'bench' AND "
                "symbol = 'MARK-USD' AND window_start >= current_timestamp - "
                "INTERVAL '3' MINUTE")

    threads = [threading.Thread(target=markers, daemon=True),
               threading.Thread(target=poll, args=("ticker", ticker_sql, ticker_seen),
                                daemon=True),
               threading.Thread(target=poll, args=("bars_1m", bars_sql, bars_seen),
                                daemon=True),
               threading.Thread(target=kafka_stage, daemon=True),
               threading.Thread(target=delta_stage, daemon=True)]
    # The live stream as the demo sends it: `concord produce --live` in a process of its
    # own (in this one, it would compete with the pollers for the GIL).
    stream = demo.stream_service(settings)
    stream.start([sys.executable, "-m", "concord.cli", "produce", "--live", "--rate", str(rate),
                  "--duration", str(seconds + WARM_UP_S + 60)],
                 env={**os.environ, **settings.as_env()}, cwd=REPO_ROOT, ready=lambda: True,
                 timeout_s=5)
    loop = BatchLoop(settings, batch_every) if batch_every else None
    cpu = CpuShare(settings, loop)
    time.sleep(WARM_UP_S)  # the job's first seconds (JIT, Python workers) are not steady state
    cpu.start()
    for t in threads:
        t.start()
    began = time.time()
    rss: list[int] = []
    while (left := began + seconds - time.time()) > 0:
        time.sleep(min(left, report_every_s or left))
        if report_every_s:
            rss.append(report_stretch(settings, sent, seen, time.time() - report_every_s,
                                      began))
    cpu.report()
    stream.stop()
    time.sleep(10)  # let the last markers show
    stop.set()
    for t in threads:
        t.join(timeout=30)
    if loop is not None:
        loop.stop()
    warm = sorted(sent)[2:]  # the poller's first queries warm Trino up
    print(f"freshness at {rate:,} trades/s, " + (
        f"batch loop every {batch_every}s ({len(loop.runs)} runs finished in the window: "
        + ", ".join(f"{hi - lo:.0f}s" for lo, hi in loop.runs) + ")" if loop else
        "no batch loop"), flush=True)
    groups = {"all": warm}
    if loop is not None:
        groups["during a batch run"] = [ts for ts in warm if loop.running_at(sent[ts])]
        groups["no batch run"] = [ts for ts in warm if not loop.running_at(sent[ts])]
    for view, times in seen.items():
        for group, stamps in groups.items():
            ages = [(times[ts] - sent[ts]) for ts in stamps if ts in times]
            missing = len([ts for ts in stamps if ts not in times])
            if ages:
                print(f"freshness {view:<8} {group:<18}: p50 {pct(ages, 0.5):.2f}s  "
                      f"p99 {pct(ages, 0.99):.2f}s  max {max(ages):.2f}s  mean "
                      f"{statistics.mean(ages):.2f}s  ({len(ages)} markers, {missing} not "
                      "seen)", flush=True)
            elif stamps:
                print(f"freshness {view:<8} {group:<18}: none of {len(stamps)} markers seen",
                      flush=True)
    for view, durations in took.items():
        if durations:
            print(f"poll query {view:<8}: p50 {pct(durations, 0.5):.3f}s  "
                  f"p99 {pct(durations, 0.99):.3f}s  ({len(durations)} queries)", flush=True)
    trino_phases(settings)
    if report_every_s and seconds >= 600:
        first = [ts for ts in warm if sent[ts] < began + 300]
        last = [ts for ts in warm if sent[ts] >= began + seconds - 300]
        for view in ("ticker", "bars_1m"):
            a = [seen[view][ts] - sent[ts] for ts in first if ts in seen[view]]
            b = [seen[view][ts] - sent[ts] for ts in last if ts in seen[view]]
            if a and b:
                print(f"stability {view:<8}: p99 first 5 min {pct(a, 0.99):.2f}s, last 5 min "
                      f"{pct(b, 0.99):.2f}s: {pct(b, 0.99) / pct(a, 0.99):.2f}x "
                      "(target within 1.2x)", flush=True)
        if len(rss) >= 2:
            print(f"stability RSS of the speed job (JVM, Python worker, committers): first "
                  f"{rss[0] / 2**20:,.0f} MiB, last {rss[-1] / 2**20:,.0f} MiB "
                  f"({rss[-1] / rss[0] - 1:+.0%}), max {max(rss) / 2**20:,.0f} MiB",
                  flush=True)


def report_stretch(settings: Settings, sent: dict[int, float],
                   seen: dict[str, dict[int, float]], since: float, began: float) -> int:
    """One line on the stretch since `since`; returns the speed job's RSS."""
    recent = [ts for ts in sent if since <= sent[ts] < time.time() - 5]
    parts = [f"{(time.time() - began) / 60:4.1f} min"]
    for view in ("ticker", "bars_1m"):
        ages = [seen[view][ts] - sent[ts] for ts in recent if ts in seen[view]]
        parts.append(f"{view} p50 {pct(ages, 0.5):.2f}s p99 {pct(ages, 0.99):.2f}s"
                     if ages else f"{view} -")
    for name in ("bars_1m", "symbol_bars_1m", "flow_5m"):
        active, on_disk, tail = table_shape(settings, name)
        parts.append(f"speed.{name} {active} files ({on_disk} on disk), log +{tail}")
    pid = control.service(settings).pid()
    memory = rss_bytes(pid) if pid else 0
    parts.append(f"job RSS {memory / 2**20:,.0f} MiB, lag {lag(settings):,} messages")
    print("  ".join(parts), flush=True)
    return memory


def trino_phases(settings: Settings) -> None:
    """Where the pollers' queries spent their time, by Trino's own account (queued,
    analysis, planning, the rest = execution and the client's fetch)."""
    rows = query(settings, "SELECT regexp_extract(query, 'serving\\.(\\w+)', 1), "
                 "approx_percentile(queued_time_ms, 0.5), approx_percentile(analysis_time_ms, "
                 "0.5), approx_percentile(planning_time_ms, 0.5), approx_percentile("
                 "to_milliseconds(\"end\" - created), 0.5), count(*) "
                 "FROM system.runtime.queries WHERE query LIKE '%MARK-USD%' "
                 "AND query NOT LIKE '%system.runtime%' AND state = 'FINISHED' GROUP BY 1")
    for view, queued, analysis, planning, total, n in rows:
        print(f"trino {view:<8} (p50 of {n} queries): queued {queued} ms, analysis {analysis} "
              f"ms, planning {planning} ms, total {total:.0f} ms", flush=True)


def sustained(settings: Settings, steps: list[int], seconds: int) -> None:
    best = 0
    for rate in steps:
        start_lag = lag(settings)
        report = ProduceReport()
        produce(settings, generated(MarketConfig(seed=rate), count=None, duration_s=seconds,
                                    live=True), rate=rate, report=report, progress=None)
        end_lag = lag(settings)
        achieved = report.sent / report.seconds
        grew = end_lag - start_lag
        ok = grew <= 2 * rate
        best = max(best, int(achieved)) if ok else best
        print(f"sustained: target {rate:,}/s, produced {achieved:,.0f}/s for {seconds}s; "
              f"speed-job lag {start_lag:,} -> {end_lag:,} messages "
              f"({'held' if ok else 'GROWING'})", flush=True)
        if not ok:
            break
        deadline = time.monotonic() + 120
        while lag(settings) > rate and time.monotonic() < deadline:
            time.sleep(2)
    print(f"highest sustained speed-layer rate: {best:,} trades/s (target >= 30,000)")


def fall_of_lag(settings: Settings, group: str, backlog: int, timeout_s: float = 1800
                ) -> float | None:
    """Trades/s at which `group`'s lag on the topic falls, sampled every 2 s from the first
    sample below `backlog` (the job is up and has completed a checkpoint) to zero; None
    when it did not reach zero in time."""
    samples: list[tuple[float, int]] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        now, behind = time.monotonic(), group_lag(settings, group, settings.topic)
        if behind < backlog:
            samples.append((now, behind))
        if behind == 0:
            break
        time.sleep(2)
    if len(samples) < 2 or samples[-1][1] != 0:
        print(f"catch-up of {group}: did not finish (samples {samples[-3:]})", flush=True)
        return None
    (t0, l0), (t1, _) = samples[0], samples[-1]
    return l0 / (t1 - t0)


def baseline_rate(settings: Settings, backlog: int, parallelism: int) -> float | None:
    """The plain Flink SQL job (bench.flink_baseline) on the backlog, as its own process."""
    group = f"bench-baseline-{uuid.uuid4().hex[:6]}"
    svc = Service("flink-baseline", settings.run_dir, settings.log_dir / "bench" /
                  f"{group}.log", ())
    env = {**os.environ, **settings.model_copy(
        update={"flink_parallelism": parallelism}).as_env()}
    svc.start([sys.executable, "-m", "bench.flink_baseline", "--group", group], env=env,
              cwd=REPO_ROOT, ready=lambda: True, timeout_s=5)
    try:
        return fall_of_lag(settings, group, backlog)
    finally:
        svc.stop()


def speed_job_rate(settings: Settings, backlog: int, parallelism: int, root: Path
                   ) -> float | None:
    """The speed job (`concord speed start`'s process) on the backlog, in a home of its
    own (no checkpoint of an earlier run to resume from)."""
    job = own_home(settings, root, flink_parallelism=parallelism)
    print(control.start(job), flush=True)
    try:
        return fall_of_lag(job, GROUP_ID, backlog)
    finally:
        control.stop(job)


def backlog(settings: Settings, prefix: str, messages: int) -> tuple[Settings, ProduceReport]:
    """`messages` generated trades produced to a new topic named from `prefix`; the
    settings on that topic and the producer's report."""
    topic = f"{prefix}-{uuid.uuid4().hex[:6]}"
    on_topic = settings.model_copy(update={"topic": topic})
    ensure_topic(on_topic, topic, settings.topic_partitions)
    report = produce(on_topic, generated(MarketConfig(seed=3), count=messages,
                                         duration_s=None),
                     report=ProduceReport(), progress=None)
    return on_topic, report


def catch_up(settings: Settings, messages: int, parallelisms: list[int]) -> None:
    """Side by side on one backlog per parallelism: the plain Flink SQL job, then the
    speed job, each alone on the box (no producer running); rates and their ratio."""
    for p in parallelisms:
        on_topic, report = backlog(settings, f"bench-catch-up-p{p}", messages)
        print(f"catch-up, parallelism {p}: {report.sent:,} messages produced to "
              f"{on_topic.topic} in {report.seconds:.1f}s", flush=True)
        plain = baseline_rate(on_topic, report.sent, p)
        with tempfile.TemporaryDirectory(prefix="concord-speed-") as root:
            ours = speed_job_rate(on_topic, report.sent, p, Path(root))
        ratio = f"{ours / plain:.2f}x" if ours and plain else "n/a"
        print(f"catch-up, parallelism {p}: plain Flink SQL {plain or 0:,.0f} trades/s, speed job "
              f"{ours or 0:,.0f} trades/s: ratio {ratio} (target >= 0.8x)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=int, default=5000)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--batch-every", type=int, default=180,
                        help="freshness: the batch loop's interval in seconds (0: none); "
                             "the demo runs it every 180 s")
    parser.add_argument("--steps", default="10000,20000,30000,40000")
    parser.add_argument("--step-seconds", type=int, default=45)
    parser.add_argument("--backlog", type=int, default=1_000_000,
                        help="messages for the catch-up measure (0: skip it)")
    parser.add_argument("--parallelism", default="1,2",
                        help="catch-up: the parallelisms to compare at")
    parser.add_argument("--emit-ms", type=int, help="CONCORD_SPEED_EMIT_MS for the job")
    parser.add_argument("--checkpoint-ms", type=int, help="CONCORD_FLINK_CHECKPOINT_MS")
    parser.add_argument("--compact-every", type=int, help="CONCORD_SPEED_COMPACT_EVERY_S")
    parser.add_argument("--report-every", type=int, default=0,
                        help="freshness: a line every so many seconds (tables, RSS)")
    parser.add_argument("--keep-logs", type=Path, help="copy the stack's logs here at the end")
    parser.add_argument("--only", choices=["catch-up", "freshness", "sustained"])
    args = parser.parse_args()

    overrides = {k: v for k, v in (("speed_emit_ms", args.emit_ms),
                                   ("flink_checkpoint_ms", args.checkpoint_ms),
                                   ("speed_compact_every_s", args.compact_every)) if v}
    # Stops the speed job and the stack at the end.
    with private_stack(**overrides) as settings:
        print(f"speed job: emit every {settings.speed_emit_ms} ms, checkpoint every "
              f"{settings.flink_checkpoint_ms} ms, compaction every "
              f"{settings.speed_compact_every_s} s", flush=True)
        refresh(settings)
        if args.only in (None, "catch-up") and args.backlog:
            catch_up(settings, args.backlog, [int(p) for p in args.parallelism.split(",")])
        if args.only != "catch-up":
            print(control.start(settings), flush=True)
        if args.only in (None, "freshness"):
            freshness(settings, args.rate, args.seconds, args.batch_every, args.report_every)
        if args.only in (None, "sustained"):
            sustained(settings, [int(s) for s in args.steps.split(",")], args.step_seconds)
        if args.keep_logs:
            shutil.copytree(settings.log_dir, args.keep_logs, dirs_exist_ok=True)


if __name__ == "__main__":
    main()
