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
import statistics
import threading
import time

from harness.stack import private_stack
from infra.kafka import group_lag
from producers.market import MarketConfig
from producers.produce import ProduceReport, generated, produce
from serving_layer.refresh import refresh
from serving_layer.trino import connect
from shared.config import Settings
from speed_layer import control
from speed_layer.job import GROUP_ID

WARM_UP_S = 30


def lag(settings: Settings) -> int:
    """Messages of the trades topic the speed job has not committed yet (all partitions)."""
    return group_lag(settings, GROUP_ID, settings.topic)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def freshness(settings: Settings, rate: int, seconds: int) -> None:
    sent: dict[int, float] = {}  # marker ts -> wall time sent
    seen: dict[str, dict[int, float]] = {"ticker": {}, "bars_1m": {}}
    stop = threading.Event()

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
            counts = {int(w): int(c) for w, c in cur.fetchall()}
            now = time.time()
            by_minute: dict[int, list[int]] = {}
            for ts in sorted(sent):
                by_minute.setdefault(ts // 60_000 * 60_000, []).append(ts)
            for minute, stamps in by_minute.items():
                for ts in stamps[:counts.get(minute, 0)]:
                    seen["bars_1m"].setdefault(ts, now)
            time.sleep(0.1)
        conn.close()  # type: ignore[no-untyped-call]

    threads = [threading.Thread(target=f, daemon=True) for f in (background, markers, poll)]
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


def catch_up(settings: Settings, messages: int) -> None:
    """The speed job's rate on a backlog: `messages` produced before it starts, then the
    fall of its lag, sampled every 2 s, from the first sample below the backlog (the job
    is up and has completed a checkpoint) to zero."""
    report = ProduceReport()
    produce(settings, generated(MarketConfig(seed=3), count=messages, duration_s=None),
            report=report,
            progress=None)
    print(f"catch-up: {report.sent:,} messages produced in {report.seconds:.1f}s", flush=True)
    print(control.start(settings), flush=True)
    samples: list[tuple[float, int]] = []
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline:
        now, behind = time.monotonic(), lag(settings)
        if behind < report.sent:
            samples.append((now, behind))
        if behind == 0:
            break
        time.sleep(2)
    if len(samples) < 2 or samples[-1][1] != 0:
        print(f"catch-up: did not finish (samples {samples[-3:]})", flush=True)
        return
    (t0, l0), (t1, _) = samples[0], samples[-1]
    print(f"catch-up: {l0:,} messages in {t1 - t0:.1f}s = {l0 / (t1 - t0):,.0f} trades/s "
          "(speed job alone on the box: no producer running)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=int, default=5000)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--steps", default="5000,10000,20000,40000")
    parser.add_argument("--step-seconds", type=int, default=45)
    parser.add_argument("--backlog", type=int, default=1_000_000,
                        help="messages for the catch-up measure (0: skip it)")
    parser.add_argument("--only", choices=["catch-up", "freshness", "sustained"])
    args = parser.parse_args()

    with private_stack() as settings:  # stops the speed job and the stack at the end
        refresh(settings)
        if args.only in (None, "catch-up") and args.backlog:
            catch_up(settings, args.backlog)
        else:
            print(control.start(settings), flush=True)
        if args.only in (None, "freshness"):
            freshness(settings, args.rate, args.seconds)
        if args.only in (None, "sustained"):
            sustained(settings, [int(s) for s in args.steps.split(",")], args.step_seconds)


if __name__ == "__main__":
    main()
