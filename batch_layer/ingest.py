"""`concord batch ingest`: Kafka -> lake.raw.trades and lake.raw.rejects, exactly once.

Every message of the topic lands exactly once: in raw.trades (valid, first occurrence
of its (exchange, symbol, trade_id) in Kafka order), or in raw.rejects with a reason
(`duplicate` for a later occurrence, also across runs, or the contract's reason).

How exactly-once holds (offsets are kept with the data):
1. A run is planned first: per partition the offset range [start, end), start being
   where the last committed run ended. The plan is appended to lake.meta.ingest_runs
   (status `planned`) before any data is written.
2. The run reads exactly that range, applies the contract (shared.contract, the one
   definition, run inside Spark through Arrow batches) and dedupes.
3. raw.rejects, then raw.trades are appended with Delta's idempotent-write options
   (txnAppId `concord-ingest`, txnVersion = run id): a write repeated for the same run
   is skipped by Delta itself.
4. The run is marked `committed` in the ledger with its counts.
A run killed anywhere is redone with the same plan by the next call: steps already
done are no-ops, the rest completes. Nothing is lost, nothing is written twice.

Order: "first occurrence in Kafka order" is (partition, offset) order. Messages of one
(exchange, symbol) share a key, so they share a partition, where Kafka order is total.

Dedupe at a cost that does not grow with raw.trades: lake.raw.trade_ids, the identity
index, holds one narrow row per accepted trade (a 64-bit hash of its identity, its
trade_date and its run), appended by each run with the same idempotent options before
the run is marked committed. A run hashes its accepted identities and groups them with
the index's hashes, one BIGINT column: the suspects are the identities whose hash is
seen twice in the run or once in an earlier run (real duplicates, and the rare hash
collision). Only the suspects are then compared by their full identity: with each other
(first in Kafka order wins) and with raw.trades rows of the trade dates the index gives
for their hashes (partition pruning), so the exact check reads a few partitions, not
the table. A lake whose raw.trades predates the index gets it built once, from
raw.trades, by the next run.

A small run (at most batch_layer.driver_ingest.DRIVER_RUN records, what a quiet stream
brings) is done by the driver without a Spark job, with the same semantics and the same
Delta transactions, once the three tables exist.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from batch_layer import driver_ingest
from infra import kafka
from shared.bookkeeping import append_ledger, ingest_ledger, ingested_until
from shared.config import Settings
from shared.contract import (
    CANONICAL_RE,
    FIELDS,
    MAX_TS_MS,
    VERDICT_FIELDS,
    Reason,
    verdict,
)
from shared.tables import append_once, open_table

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

TXN_APP_ID = "concord-ingest"
RECORDS_PER_TASK = 250_000
# One run takes at most this many messages of each partition; longer backlogs go in runs.
MAX_PER_PARTITION = 2_500_000
# A run of at most this many records looks its hashes up in the identity index with a
# broadcast (a scan of the index's one column); a larger one groups both (a shuffle).
SMALL_RUN = 1_000_000
IDENTITY = ["exchange", "symbol", "trade_id"]


def _id_hash() -> Column:
    """The identity's 64-bit hash in the identity index (Spark's xxhash64, seed 42)."""
    from pyspark.sql import functions as F

    return F.xxhash64(*IDENTITY)


_ARROW_TYPES = {
    "BOOLEAN": pa.bool_(), "STRING": pa.string(), "DECIMAL(18,8)": pa.decimal128(18, 8),
    "BIGINT": pa.int64(),
}
_VERDICT_ARROW = pa.struct([(name, _ARROW_TYPES[sql]) for name, sql in VERDICT_FIELDS])
_VERDICT_SQL = ", ".join(f"{name} {sql}" for name, sql in VERDICT_FIELDS)
# Kafka coordinates and bytes, then the contract's verdict (the same columns Flink gets).
PARSED_SCHEMA = (
    "kafka_partition INT, kafka_offset BIGINT, kafka_timestamp TIMESTAMP, key BINARY, "
    "value BINARY, " + _VERDICT_SQL
)


def verdicts(values: pa.Array, settled: pa.Array) -> pa.Array:
    """The contract's verdict on each value whose `settled` flag is false, else null.

    Runs in Spark's Python workers as an Arrow UDF. The JVM fast path settles most
    messages and sends their value as null: only the others (malformed, non-canonical
    or rejected ones, a small share) are read here, the rest of the batch stays in Arrow.
    """
    import numpy as np
    import pyarrow.compute as pc

    todo = pc.indices_nonzero(pc.invert(settled.fill_null(False))).to_numpy()
    rows = [dict(zip(_VERDICT_ARROW.names, verdict(values[int(i)].as_py()), strict=True))
            for i in todo]
    where = np.full(len(values), -1, dtype=np.int64)
    where[todo] = np.arange(len(todo))
    picks = pa.array(where, mask=where < 0)
    return pa.array(rows, type=_VERDICT_ARROW).take(picks)


def parse_records(records: DataFrame) -> DataFrame:
    """Kafka records (partition, offset, timestamp, key, value) -> PARSED_SCHEMA rows.

    One pass. A canonical message (shared.contract.CANONICAL_RE, with price, qty > 0 and
    ts in range) is accepted inside the JVM; every other message gets the verdict of the
    contract's Python code (`verdicts`). The contract's unit tests prove the fast path
    never disagrees with `parse_trade`; tests/integration/test_contract_engines.py runs
    every contract case through this function.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.functions import arrow_udf

    text = F.col("value").cast("string")
    # A canonical message's strings hold no quote and no escape, so split at '"' it is
    # [{, exchange, :, <exchange>, ",", symbol, :, <symbol>, ..., ts, :<ts>}]: every
    # value at a fixed place (whitespace only between the tokens; ts's own is trimmed
    # by the CAST). Five times cheaper than from_json. Split once per message, in a
    # column of its own (inside the CASE below, each field would split it again).
    records = records.withColumn("_parts", F.when(text.rlike(CANONICAL_RE), F.split(text, '"')))
    parts = F.col("_parts")
    ts_part = parts.getItem(4 * len(FIELDS) - 2)
    canon = F.when(parts.isNotNull(), F.struct(
        *(parts.getItem(4 * i + 3).alias(name) for i, name in enumerate(FIELDS[:-1])),
        F.translate(ts_part, ":}", "  ").cast("bigint").alias("ts"),
    ))
    fast = (F.col("canon").isNotNull() & (F.col("canon.price").try_cast("decimal(18,8)") > 0)
            & (F.col("canon.qty").try_cast("decimal(18,8)") > 0)
            & (F.col("canon.ts") <= MAX_TS_MS))
    # The type hints select a scalar Arrow UDF (PySpark warns when functionType is
    # given as well); the stubs only know the explicit form.
    slow = arrow_udf(verdicts, _VERDICT_SQL)  # type: ignore[call-overload]
    marked = (records.withColumn("canon", canon).withColumn("fast", fast)
              # Settled values are not shipped to Python (null in their place).
              .withColumn("slow", slow(F.when(~F.col("fast"), F.col("value")), F.col("fast"))))

    def pick(name: str, sql: str) -> Column:
        fast_value: Column = {
            "ok": F.lit(True), "reason": F.lit(None), "detail": F.lit(None),
        }.get(name, F.col(f"canon.{name}"))
        return (F.when(F.col("fast"), fast_value.try_cast(sql.lower()))
                .otherwise(F.col(f"slow.{name}")).alias(name))

    parsed: DataFrame = marked.select(
        F.col("partition").alias("kafka_partition"), F.col("offset").alias("kafka_offset"),
        F.col("timestamp").alias("kafka_timestamp"), "key", "value",
        *(pick(name, sql) for name, sql in VERDICT_FIELDS),
    )
    return parsed


def _records(ranges: dict[int, PartitionCounts]) -> int:
    """Records a run's offset ranges hold."""
    return sum(max(c.end - c.start, 0) for c in ranges.values())


@dataclass
class PartitionCounts:
    start: int
    end: int
    records: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0

    @property
    def balanced(self) -> bool:
        return self.accepted + self.rejected == self.records

    def count(self, outcome: str, n: int = 1) -> None:
        """`n` records of `outcome` (accepted, rejected or duplicate; a duplicate is
        rejected too)."""
        self.records += n
        if outcome == "accepted":
            self.accepted += n
        else:
            self.rejected += n
            if outcome == "duplicate":
                self.duplicates += n


@dataclass
class IngestRun:
    run_id: int
    redo: bool
    partitions: dict[int, PartitionCounts] = field(default_factory=dict)
    seconds: float = 0.0
    # Wall seconds per step: plan, [read,] classify (read + parse + dedupe), rejects,
    # trades, index, commit.
    phases: dict[str, float] = field(default_factory=dict)
    driver: bool = False  # done by the driver alone (batch_layer.driver_ingest)

    @property
    def records(self) -> int:
        return sum(p.records for p in self.partitions.values())

    @property
    def balanced(self) -> bool:
        return all(p.balanced for p in self.partitions.values())


class Ingest:
    """One topic into the raw tables; `run()` ingests what is there now, in runs."""

    def __init__(self, settings: Settings, spark: SparkSession, *, topic: str | None = None,
                 max_records_per_partition: int = MAX_PER_PARTITION,
                 driver_run: int = driver_ingest.DRIVER_RUN) -> None:
        """Runs of at most `driver_run` records are done by the driver (0: never)."""
        self.settings = settings
        self.spark = spark
        self.topic = topic or settings.topic
        self.max_per_partition = max_records_per_partition
        self.driver_run = driver_run
        self.trades_uri = settings.table_uri("raw", "trades")
        self.rejects_uri = settings.table_uri("raw", "rejects")
        self.index_uri = settings.table_uri("raw", "trade_ids")

    # --- the ledger ---------------------------------------------------------------------

    def _ledger(self) -> list[dict[str, Any]]:
        return ingest_ledger(self.settings, self.topic)

    def _append_ledger(self, run_id: int, status: str, counts: dict[int, PartitionCounts]
                       ) -> None:
        append_ledger(self.settings, run_id, self.topic, status,
                      [(p, asdict(c) | {"start_offset": c.start, "end_offset": c.end})
                       for p, c in counts.items()], app_id=TXN_APP_ID)

    def plan(self) -> tuple[int, dict[int, PartitionCounts], bool]:
        """The next run: (run id, ranges, redo?). A planned, uncommitted run is redone."""
        ledger = self._ledger()
        committed = {r["run_id"] for r in ledger if r["status"] == "committed"}
        planned = [r for r in ledger if r["status"] == "planned" and r["run_id"] not in committed]
        if planned:
            run_id = planned[0]["run_id"]
            ranges = {r["kafka_partition"]: PartitionCounts(r["start_offset"], r["end_offset"])
                      for r in planned if r["run_id"] == run_id}
            return run_id, ranges, True
        last_end = ingested_until(ledger)
        begin, end = kafka.offset_range(self.settings, self.topic)
        ranges = {}
        for p, latest in end.items():
            start = last_end.get(p, begin[p])
            if start < begin[p]:
                raise RuntimeError(
                    f"partition {p}: offsets {start}..{begin[p] - 1} were deleted by Kafka "
                    "retention before they were ingested; raise retention or ingest more often"
                )
            ranges[p] = PartitionCounts(start, min(latest, start + self.max_per_partition))
        run_id = max((r["run_id"] for r in ledger), default=0) + 1
        return run_id, ranges, False

    # --- one run ------------------------------------------------------------------------

    def _read(self, ranges: dict[int, PartitionCounts]) -> DataFrame:
        starting = {self.topic: {str(p): c.start for p, c in ranges.items()}}
        ending = {self.topic: {str(p): c.end for p, c in ranges.items()}}
        # Spark splits the offset ranges into tasks of about this many records, so a
        # long backlog of one partition never has to fit one task's memory.
        tasks = max(len(ranges), -(-_records(ranges) // RECORDS_PER_TASK))
        return (
            self.spark.read.format("kafka")
            .options(**kafka.spark_options(self.settings))
            .option("subscribe", self.topic)
            .option("startingOffsets", json.dumps(starting))
            .option("endingOffsets", json.dumps(ending))
            .option("kafka.isolation.level", "read_committed")
            .option("minPartitions", str(tasks))
            .load()
            .select("partition", "offset", "timestamp", "key", "value")
        )

    def _identity_index(self) -> DataFrame | None:
        """lake.raw.trade_ids, built from raw.trades first if raw.trades predates it."""
        if open_table(self.index_uri) is None:
            if open_table(self.trades_uri) is None:
                return None
            (self.spark.read.format("delta").load(self.trades_uri)
             .select(_id_hash().alias("id_hash"), "trade_date", "ingest_run")
             .write.format("delta").mode("append")
             .option("txnAppId", f"{TXN_APP_ID}-trade-ids-{self.topic}-built")
             .option("txnVersion", 0).save(self.index_uri))
        index: DataFrame = self.spark.read.format("delta").load(self.index_uri)
        return index

    def _classify(self, parsed: DataFrame, run_id: int, records: int) -> DataFrame:
        """Every record with `outcome` accepted / rejected / duplicate.

        Dedupe works on narrow columns: the identities' hashes find the suspects (seen
        twice in this run or once in an earlier run, per the identity index), and only
        the suspects are compared by identity, with each other and with the raw.trades
        rows of the dates the index gives. The duplicates' coordinates are marked on the
        full records with a join that Spark broadcasts when they are few, as usual.
        `parsed` is read more than once: the caller persists it.
        """
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        coords = ["kafka_partition", "kafka_offset"]
        ids = parsed.where("ok").select(*IDENTITY, *coords, _id_hash().alias("id_hash"))
        # An unreadable index or raw.trades raises here (never "no earlier trades"):
        # skipping this would let a trade of an earlier run in again.
        index = self._identity_index()
        # Trades of earlier runs only: a redone run must not see its own rows.
        earlier = index.where(F.col("ingest_run") != run_id) if index is not None else None
        if records <= SMALL_RUN:
            # A few hashes: broadcast them into the index scan (no shuffle of the index).
            suspect_hashes = ids.groupBy("id_hash").count().where("count > 1").select("id_hash")
            if earlier is not None:
                suspect_hashes = suspect_hashes.union(earlier.join(
                    F.broadcast(ids.select("id_hash")), "id_hash", "left_semi")
                    .select("id_hash")).distinct()
        else:
            hashes = ids.select("id_hash", F.lit(1).alias("here"), F.lit(0).alias("before"))
            if earlier is not None:
                hashes = hashes.unionByName(earlier.select(
                    "id_hash", F.lit(0).alias("here"), F.lit(1).alias("before")))
            suspect_hashes = (hashes.groupBy("id_hash")
                              .agg(F.sum("here").alias("here"), F.sum("before").alias("before"))
                              .where("here > 1 OR (here = 1 AND before > 0)")
                              .select("id_hash"))
        suspect_hashes = suspect_hashes.localCheckpoint()
        suspects = ids.join(F.broadcast(suspect_hashes), "id_hash", "left_semi")
        order = Window.partitionBy(*IDENTITY).orderBy(*coords)
        duplicates = (suspects.withColumn("rank", F.row_number().over(order))
                      .where("rank > 1").select(*coords))
        if earlier is not None:
            dates = [r[0] for r in earlier.join(F.broadcast(suspect_hashes), "id_hash",
                                                "left_semi")
                     .select("trade_date").distinct().collect()]
            if dates:
                seen = (self.spark.read.format("delta").load(self.trades_uri)
                        .where(F.col("trade_date").isin(dates))
                        .where(F.col("ingest_run") != run_id).select(*IDENTITY))
                again = suspects.join(seen, IDENTITY, "left_semi").select(*coords)
                duplicates = duplicates.union(again).distinct()
        # Small (the duplicates only), read by each of the caller's three actions.
        duplicates = duplicates.withColumn("duplicate", F.lit(True)).localCheckpoint()
        marked = parsed.join(duplicates, coords, "left")
        return marked.withColumn(
            "outcome",
            F.when(~F.col("ok"), F.lit("rejected"))
            .when(F.col("duplicate").isNotNull(), F.lit("duplicate"))
            .otherwise(F.lit("accepted")),
        )

    def run_once(self) -> IngestRun | None:
        """Plan and execute one run; None when there is nothing new."""
        from pyspark import StorageLevel
        from pyspark.sql import functions as F

        t0 = time.monotonic()
        phases: dict[str, float] = {}

        def lap(name: str) -> None:
            phases[name] = time.monotonic() - t0 - sum(phases.values())

        run_id, ranges, redo = self.plan()
        if not redo and all(c.end <= c.start for c in ranges.values()):
            return None
        if not redo:
            self._append_ledger(run_id, "planned", ranges)
        lap("plan")
        if _records(ranges) <= self.driver_run and all(
                open_table(uri) is not None
                for uri in (self.trades_uri, self.rejects_uri, self.index_uri)):
            self._run_in_driver(run_id, ranges, lap)
            self._append_ledger(run_id, "committed", ranges)
            lap("commit")
            return IngestRun(run_id, redo, ranges, time.monotonic() - t0, phases, driver=True)
        parsed = parse_records(self._read(ranges)).persist(StorageLevel.MEMORY_AND_DISK)
        classified = self._classify(parsed, run_id, _records(ranges)).withColumn(
            "ingested_at", F.current_timestamp()
        ).withColumn("ingest_run", F.lit(run_id).cast("bigint"))
        try:
            for row in classified.groupBy("kafka_partition", "outcome").count().collect():
                ranges[row["kafka_partition"]].count(row["outcome"], row["count"])
            lap("classify")
            rejects = classified.where("outcome != 'accepted'").select(
                "value", "key", "kafka_partition", "kafka_offset", "kafka_timestamp",
                F.when(F.col("outcome") == "duplicate", F.lit(Reason.DUPLICATE))
                .otherwise(F.col("reason")).alias("reason"),
                F.when(F.col("outcome") == "duplicate",
                       F.concat(F.lit("(exchange, symbol, trade_id) = ("),
                                F.concat_ws(", ", *IDENTITY), F.lit(") seen before")))
                .otherwise(F.col("detail")).alias("detail"),
                "ingested_at", "ingest_run",
            )
            (rejects.write.format("delta").mode("append")
             .option("txnAppId", f"{TXN_APP_ID}-rejects-{self.topic}")
             .option("txnVersion", run_id).save(self.rejects_uri))
            lap("rejects")
            trades = classified.where("outcome = 'accepted'").select(
                *IDENTITY, "price", "qty", "side", "ts",
                F.to_date(F.timestamp_millis("ts")).alias("trade_date"),
                "kafka_partition", "kafka_offset", "ingested_at", "ingest_run",
            )
            (trades.write.format("delta").mode("append").partitionBy("trade_date")
             .option("txnAppId", f"{TXN_APP_ID}-trades-{self.topic}")
             .option("txnVersion", run_id).save(self.trades_uri))
            lap("trades")
            (trades.select(_id_hash().alias("id_hash"), "trade_date", "ingest_run")
             .write.format("delta").mode("append")
             .option("txnAppId", f"{TXN_APP_ID}-trade-ids-{self.topic}")
             .option("txnVersion", run_id).save(self.index_uri))
            lap("index")
        finally:
            parsed.unpersist()
        self._append_ledger(run_id, "committed", ranges)
        lap("commit")
        return IngestRun(run_id, redo, ranges, time.monotonic() - t0, phases)

    def _run_in_driver(self, run_id: int, ranges: dict[int, PartitionCounts],
                       lap: Callable[[str], None]) -> None:
        """One small run without Spark (batch_layer.driver_ingest); counts into `ranges`."""
        from datetime import UTC, datetime

        d = driver_ingest
        records = d.read_range(self.settings, self.topic,
                               {p: (c.start, c.end) for p, c in ranges.items()})
        lap("read")
        judged = d.judge(records, lambda hashes: d.earlier_identities(
            self.index_uri, self.trades_uri, run_id, hashes))
        for j in judged:
            ranges[j.record.partition].count(j.outcome)
        lap("classify")
        now = datetime.now(UTC)
        trades = d.trade_rows(judged, run_id, now)
        index = [{"id_hash": d.id_hash(t["exchange"], t["symbol"], t["trade_id"]),
                  "trade_date": t["trade_date"], "ingest_run": run_id} for t in trades]
        # In the Spark form's order and under its transactions (an empty one is skipped).
        for step, uri, rows, app, by in (
                ("rejects", self.rejects_uri, d.reject_rows(judged, run_id, now), "rejects",
                 None),
                ("trades", self.trades_uri, trades, "trades", ["trade_date"]),
                ("index", self.index_uri, index, "trade-ids", None)):
            if rows:
                append_once(uri, rows, f"{TXN_APP_ID}-{app}-{self.topic}", run_id,
                            partition_by=by)
            lap(step)

    def run(self, progress: Callable[[IngestRun], None] | None = None) -> list[IngestRun]:
        """Ingest until caught up with the offsets present when each run is planned."""
        runs = []
        while (result := self.run_once()) is not None:
            runs.append(result)
            if progress is not None:
                progress(result)
            if not result.balanced:
                break
            if all(c.end - c.start < self.max_per_partition
                   for c in result.partitions.values()):
                break
        return runs
