"""Batch ingest throughput: Kafka -> lake.raw.trades / raw.rejects, and its cost per
message on an empty table vs a table that already holds many trades.

One topic gets N generated messages (1% malformed, 1% near duplicates, late and out of
order ones). Then, on the same Spark session:

1. the baseline: Spark reading the topic's partitions alone (no parsing, no writes);
2. run 1: `Ingest.run()` of the backlog into an empty lake;
3. run 3: the same backlog into a lake whose raw.trades already holds `--seeded`
   generated trades as two earlier ingest runs (with their identity index and ledger;
   built untimed, identities disjoint from the topic's), so every message is checked
   against them for duplicates.

Prints msg/s of each, the ratio to the baseline, and run 3's cost per message over
run 1's. Targets (issue 13): run 1 >= 150,000 msg/s at a 10M backlog; run 3's cost per
message <= 1.2x run 1's. Results are checked: accepted + rejected = consumed per
partition, and both lakes accept the same trades.

    .venv/bin/python -m bench.ingest [--backlog 10000000] [--seeded 30000000]
"""

from __future__ import annotations

import argparse
import itertools
import time
import uuid
from typing import Any

from batch_layer.ingest import Ingest, IngestRun
from harness.stack import private_stack
from infra import kafka
from infra.engines import spark_session
from infra.kafka import ensure_topic
from producers.market import Market, MarketConfig
from producers.produce import ProduceReport, produce
from shared.bookkeeping import append_ledger

CONFIG = MarketConfig(seed=11, jitter_ms=500, late_fraction=0.01, duplicate_fraction=0.01,
                      malformed_fraction=0.01)


def seed(settings: Any, spark: Any, trades: int, topic: str) -> None:
    """raw.trades with `trades` generated trades as ingest runs 1 and 2 of `topic`, their
    identity index and ledger rows (offsets 0: the topic's messages are all still new)."""
    import pyarrow.compute as pc

    from bench.recompute import DAY_MS, append_raw_trades, generate

    start_ms = MarketConfig().start_ms // DAY_MS * DAY_MS - 30 * DAY_MS
    table = generate(trades, 30, start_ms)
    # Identities of their own: ids that no generated message uses.
    table = table.set_column(2, "trade_id",
                             pc.binary_join_element_wise("seed-", table["trade_id"], ""))
    uri = settings.table_uri("raw", "trades")
    append_raw_trades(uri, table.slice(0, trades // 2), run=1)
    append_raw_trades(uri, table.slice(trades // 2), run=2)
    del table
    for run in (1, 2):
        counts = {p: {"start_offset": 0, "end_offset": 0, "records": 0, "accepted": 0,
                      "rejected": 0, "duplicates": 0} for p in range(4)}
        for status in ("planned", "committed"):
            append_ledger(settings, run, topic, status, counts.items(), app_id="concord-ingest")
    Ingest(settings, spark, topic=topic)._identity_index()  # builds it from raw.trades


def line(label: str, runs: list[IngestRun], seconds: float) -> float:
    consumed = sum(r.records for r in runs)
    accepted = sum(c.accepted for r in runs for c in r.partitions.values())
    duplicates = sum(c.duplicates for r in runs for c in r.partitions.values())
    print(f"{label}: {consumed:,} messages ({accepted:,} accepted, {duplicates:,} duplicates) "
          f"in {seconds:.1f}s: {consumed / seconds:,.0f} msg/s, {len(runs)} run(s) "
          f"(ids {', '.join(str(r.run_id) for r in runs)}), balanced="
          f"{all(r.balanced for r in runs)}", flush=True)
    for r in runs:
        steps = ", ".join(f"{k} {v:.1f}s" for k, v in r.phases.items())
        print(f"  run {r.run_id}: {steps}", flush=True)
    return seconds / consumed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backlog", type=int, default=10_000_000)
    parser.add_argument("--seeded", type=int, default=30_000_000,
                        help="trades already in raw.trades for run 3 (0: skip run 3)")
    args = parser.parse_args()
    n = args.backlog

    with private_stack(spark_driver_memory="2g") as settings:
        topic = f"bench-ingest-{uuid.uuid4().hex[:6]}"
        ensure_topic(settings, topic, 4)
        stream = ((m.key, m.value) for m in itertools.islice(Market(CONFIG).messages(), n))
        report = produce(settings, stream, topic=topic, report=ProduceReport(), progress=None)
        print(f"{n:,} messages produced at {report.rate:,.0f} msg/s", flush=True)
        spark = spark_session(settings, "bench-ingest")
        try:
            t0 = time.monotonic()
            (spark.read.format("kafka").options(**kafka.spark_options(settings))
             .option("subscribe", topic).option("startingOffsets", "earliest")
             .option("endingOffsets", "latest").option("kafka.isolation.level", "read_committed")
             .option("minPartitions", str(max(4, n // 250_000))).load()
             .select("partition", "offset", "timestamp", "key", "value")
             .write.format("noop").mode("overwrite").save())
            read_s = time.monotonic() - t0
            print(f"baseline: Spark reads the topic alone in {read_s:.1f}s: "
                  f"{n / read_s:,.0f} msg/s", flush=True)

            empty = settings.model_copy(update={"lake_uri": f"{settings.lake}-empty"})
            t0 = time.monotonic()
            first = Ingest(empty, spark, topic=topic).run()
            cost1 = line("run 1, empty lake", first, time.monotonic() - t0)
            cost3 = None
            if args.seeded:
                full = settings.model_copy(update={"lake_uri": f"{settings.lake}-seeded"})
                t0 = time.monotonic()
                seed(full, spark, args.seeded, topic)
                print(f"seeded lake: {args.seeded:,} trades as runs 1-2 and their identity "
                      f"index, in {time.monotonic() - t0:.0f}s (untimed)", flush=True)
                t0 = time.monotonic()
                third = Ingest(full, spark, topic=topic).run()
                cost3 = line(f"run 3, {args.seeded:,} trades already in raw.trades", third,
                             time.monotonic() - t0)
                same = [sum(c.accepted for c in r.partitions.values()) for r in first]
                again = [sum(c.accepted for c in r.partitions.values()) for r in third]
                print(f"same trades accepted in both lakes: {sum(same) == sum(again)}",
                      flush=True)
        finally:
            spark.stop()

    rate1 = 1 / cost1
    print()
    print(f"ingest of a {n:,}-message backlog (4 partitions), local[2]")
    print(f"baseline (read alone) {n / read_s:>12,.0f} msg/s")
    print(f"run 1 (empty lake)    {rate1:>12,.0f} msg/s: {rate1 / (n / read_s):.2f}x the "
          f"baseline; target >= 150,000: {'met' if rate1 >= 150_000 else 'not met'}")
    if cost3 is not None:
        print(f"run 3 ({args.seeded:,} in)  {1 / cost3:>12,.0f} msg/s: cost per message "
              f"{cost3 / cost1:.2f}x run 1's; target <= 1.2: "
              f"{'met' if cost3 / cost1 <= 1.2 else 'not met'}")


if __name__ == "__main__":
    main()
