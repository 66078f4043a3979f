"""The cluster profile (issue 17): what the engines' own distributed modes give on this
box, side by side with the single-process modes in the same invocation.

A private stack in the cluster profile (infra.cluster: 3 KRaft brokers, a Spark
standalone master and 2 workers, a Flink session cluster of a JobManager and 2
TaskManagers x 2 slots, a Trino coordinator and worker, Hive's metastore on PostgreSQL).

1. Speed-job catch-up on the Flink session cluster at parallelism 1 and 2: --backlog
   messages produced to a topic of their own before the job starts; the rate at which
   its consumer group's lag falls to zero (bench.speed's measure), for each parallelism
   in a home of its own (no checkpoint to resume from). Printed: both rates and p2/p1.
2. Recompute on the standalone Spark cluster vs local[2]: --trades generated trades in
   lake.raw.trades (bench.recompute's generator, the ingest layout), then `concord batch
   recompute` of bars_1m over their whole range, as an operator runs it, once with the
   profile's standalone master and once with CONCORD_SPARK_MASTER=local[2] (each the
   better of --runs runs; the command's whole wall time: JVM, executors, the jobs).
   Printed: both times and the ratio.

On 2 cores neither can be faster than the single-process mode by much: a second
TaskManager or Spark worker adds processes, not cores; the figures say what the
distributed modes cost here and that they work (BENCHMARKS.md).

    .venv/bin/python -m bench.cluster [--backlog 300000] [--trades 2000000] [--runs 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.recompute import build_raw_trades
from bench.speed import backlog, speed_job_rate
from harness.stack import private_cluster_settings, running
from shared.config import Settings

CONCORD = str(Path(sys.executable).with_name("concord"))


def catch_up(settings: Settings, messages: int, parallelisms: list[int]) -> dict[int, float]:
    rates: dict[int, float] = {}
    for p in parallelisms:
        on_topic, report = backlog(settings, f"bench-cluster-p{p}", messages)
        print(f"catch-up, parallelism {p}: {report.sent:,} messages produced to "
              f"{on_topic.topic} "
              f"({settings.kafka_brokers} brokers, replication {settings.kafka_replication}) "
              f"in {report.seconds:.1f}s", flush=True)
        with tempfile.TemporaryDirectory(prefix="concord-cluster-speed-") as root:
            rate = speed_job_rate(on_topic, report.sent, p, Path(root))
        print(f"catch-up, parallelism {p} on the Flink session cluster "
              f"({settings.flink_cluster}): {rate or 0:,.0f} trades/s", flush=True)
        if rate:
            rates[p] = rate
    return rates


def recompute_s(settings: Settings, start: datetime, end: datetime, runs: int) -> float:
    """The better of `runs` wall times of `concord batch recompute --view bars_1m`."""
    env = {**os.environ, **settings.as_env()}
    best = float("inf")
    for _ in range(runs):
        t0 = time.monotonic()
        done = subprocess.run([CONCORD, "batch", "recompute", "--view", "bars_1m", "--from",
                               start.isoformat(), "--to", end.isoformat()], env=env,
                              capture_output=True, text=True, timeout=3600, check=False)
        took = time.monotonic() - t0
        if done.returncode != 0:
            raise RuntimeError(f"concord batch recompute failed ({settings.spark_master_url}):"
                               f"\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        best = min(best, took)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backlog", type=int, default=300_000)
    parser.add_argument("--parallelism", default="1,2")
    parser.add_argument("--trades", type=int, default=2_000_000)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="concord-cluster-") as home:
        settings = private_cluster_settings(Path(home))
        with running(settings):
            print(f"cluster profile up: ports from {settings.cluster_port_base}", flush=True)
            if args.backlog:
                rates = catch_up(settings, args.backlog,
                                 [int(p) for p in args.parallelism.split(",")])
                if 1 in rates and 2 in rates:
                    print(f"catch-up on the session cluster: parallelism 1 {rates[1]:,.0f} "
                          f"trades/s, parallelism 2 {rates[2]:,.0f} trades/s: "
                          f"{rates[2] / rates[1]:.2f}x", flush=True)
            if args.trades:
                start = datetime(2026, 11, 1, tzinfo=UTC)
                end = start + timedelta(days=args.days)
                build_raw_trades(settings.table_uri("raw", "trades"), args.trades, args.days,
                                 int(start.timestamp() * 1000))
                local = settings.model_copy(update={"profile": "local",
                                                    "spark_master": "local[2]"})
                cluster_s = recompute_s(settings, start, end, args.runs)
                print(f"recompute bars_1m of {args.trades:,} trades on the standalone Spark "
                      f"cluster ({settings.spark_master_url}): {cluster_s:.1f}s", flush=True)
                local_s = recompute_s(local, start, end, args.runs)
                print(f"recompute bars_1m of {args.trades:,} trades on local[2]: "
                      f"{local_s:.1f}s; standalone / local[2]: {cluster_s / local_s:.2f}x "
                      "the time", flush=True)


if __name__ == "__main__":
    main()
