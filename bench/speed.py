"""Speed layer: freshness into the serving views, and the highest sustained rate.

1. Freshness at --rate (default 5,000 trades/s of live generated trades): once a second
   a marker trade (exchange `bench`, symbol `MARK-USD`, ts = now) is sent; a poller
   queries serving.ticker and serving.bars_1m (the marker's current 1-minute bar) every
   ~100 ms. Freshness = first time the marker is visible - time it was sent (includes
   the poll's own query time). Prints p50/p99 per view.
0. Catch-up rate: --backlog messages produced before the job starts; how fast its lag
   falls to zero (the job alone on the box).
2. Sustained rate: live trades at growing rates (--steps), each for --step-seconds;
   the speed job's Kafka lag (end offsets - offsets committed on its checkpoints) at
   the start and the end of each step. "Sustained" = lag did not grow by more than two
   seconds' worth of messages. Prints the achieved produce rate and the lag per step.

Runs on a private stack (free ports, temp home) with the real speed job (as `concord
speed start` runs it).

    .venv/bin/python -m bench.speed [--rate 5000] [--seconds 60] [--steps 5000,10000,20000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path

import pyarrow.dataset as pc

from harness.stack import own_home, private_stack
from infra import kafka
from infra.kafka import ensure_topic, group_lag
from infra.processes import Service
from producers.market import MarketConfig
from producers.produce import ProduceReport, generated, produce
from serving_layer.refresh import refresh
from serving_layer.trino import connect
from shared.config import REPO_ROOT, Settings
from shared.tables import open_table
from speed_layer import control
from speed_layer.job import GROUP_ID
from speed_layer.pipeline import partials_topic

WARM_UP_S = 30


def lag(settings: Settings) -> int:
    """Messages of the trades topic the speed job has not committed yet (all partitions)."""
    return group_lag(settings, GROUP_ID, settings.topic)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def freshness(settings: Settings, rate: int, seconds: int) -> None:
    sent: dict[int, float] = {}  # marker ts -> wall time sent
    # Where each marker became visible, stage by stage: the speed job's partials topic
    # (read_committed: after the checkpoint that covers it), the Delta table (delta-rs),
    # then through Trino (bars_1m's current bar and the ticker).
    seen: dict[str, dict[int, float]] = {"kafka": {}, "delta": {}, "bars_1m": {}, "ticker": {}}
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
            time.sleep(0.05)

    def background() -> None:
        produce(settings, generated(MarketConfig(seed=8), count=None,
                                    duration_s=seconds + WARM_UP_S, live=True),
                rate=rate, report=ProduceReport(), progress=None)

    def markers() -> None:
        i = 0
        while not stop.is_set():
            ts = int(time.time() * 1000)
            value = (f'{{"exchange":"bench","symbol":"MARK-USD","trade_id":"m{i}",'
                     f'"price":"1.00000000","qty":"1.00000000","side":"buy","ts":{ts}}}')
            produce(settings, [(b"bench:MARK-USD", value.encode())], report=ProduceReport(),
                    progress=None)
            sent[ts] = time.time()
            i += 1
            time.sleep(max(0.0, 1.0 - (time.time() - sent[ts])))

    def poll() -> None:
        conn = connect(settings)
        cur = conn.cursor()
        while not stop.is_set():
            cur.execute("SELECT to_unixtime(ts) * 1000 FROM lake.serving.ticker "
                        "WHERE exchange = 'bench' AND symbol = 'MARK-USD'")
            rows = cur.fetchall()
            now = time.time()
            newest = int(rows[0][0]) if rows else 0
            for ts in list(sent):
                if ts <= newest:
                    seen["ticker"].setdefault(ts, now)
            cur.execute("SELECT to_unixtime(window_start) * 1000, trade_count "
                        "FROM lake.serving.bars_1m WHERE exchange = 'bench' AND "
                        "symbol = 'MARK-USD' AND window_start >= current_timestamp - "
                        "INTERVAL '3' MINUTE")
            mark("bars_1m", {int(w): int(c) for w, c in cur.fetchall()}, time.time())
            time.sleep(0.1)
        conn.close()  # type: ignore[no-untyped-call]

    threads = [threading.Thread(target=f, daemon=True)
               for f in (background, markers, poll, kafka_stage, delta_stage)]
    threads[0].start()
    time.sleep(WARM_UP_S)  # the job's first seconds (JIT, Python workers) are not steady state
    for t in threads[1:]:
        t.start()
    threads[0].join()
    time.sleep(10)  # let the last markers show
    stop.set()
    for t in threads[1:]:
        t.join(timeout=30)
    warm = sorted(sent)[2:]  # the poller's first queries warm Trino up
    for view, times in seen.items():
        ages = [(times[ts] - sent[ts]) for ts in warm if ts in times]
        missing = len([ts for ts in warm if ts not in times])
        if ages:
            print(f"freshness {view:<8} at {rate:,} trades/s: p50 {pct(ages, 0.5):.2f}s  "
                  f"p99 {pct(ages, 0.99):.2f}s  max {max(ages):.2f}s  mean "
                  f"{statistics.mean(ages):.2f}s  ({len(ages)} markers, {missing} not seen)",
                  flush=True)
        else:
            print(f"freshness {view}: no marker seen", flush=True)


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
    print(f"highest sustained speed-layer rate: {best:,} trades/s (target >= 50,000)")


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


def catch_up(settings: Settings, messages: int, parallelisms: list[int]) -> None:
    """Side by side on one backlog per parallelism: the plain Flink SQL job, then the
    speed job, each alone on the box (no producer running); rates and their ratio."""
    for p in parallelisms:
        topic = f"bench-catch-up-p{p}-{uuid.uuid4().hex[:6]}"
        on_topic = settings.model_copy(update={"topic": topic})
        ensure_topic(on_topic, topic, settings.topic_partitions)
        report = produce(on_topic, generated(MarketConfig(seed=3), count=messages,
                                             duration_s=None),
                         report=ProduceReport(), progress=None)
        print(f"catch-up, parallelism {p}: {report.sent:,} messages produced to {topic} in "
              f"{report.seconds:.1f}s", flush=True)
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
    parser.add_argument("--steps", default="5000,10000,20000,40000")
    parser.add_argument("--step-seconds", type=int, default=45)
    parser.add_argument("--backlog", type=int, default=1_000_000,
                        help="messages for the catch-up measure (0: skip it)")
    parser.add_argument("--parallelism", default="1,2",
                        help="catch-up: the parallelisms to compare at")
    parser.add_argument("--only", choices=["catch-up", "freshness", "sustained"])
    args = parser.parse_args()

    with private_stack() as settings:  # stops the speed job and the stack at the end
        refresh(settings)
        if args.only in (None, "catch-up") and args.backlog:
            catch_up(settings, args.backlog, [int(p) for p in args.parallelism.split(",")])
        if args.only != "catch-up":
            print(control.start(settings), flush=True)
        if args.only in (None, "freshness"):
            freshness(settings, args.rate, args.seconds)
        if args.only in (None, "sustained"):
            sustained(settings, [int(s) for s in args.steps.split(",")], args.step_seconds)


if __name__ == "__main__":
    main()
