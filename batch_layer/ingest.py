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
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from shared.config import Settings
from shared.contract import VERDICT_FIELDS, Reason, verdict

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

TXN_APP_ID = "concord-ingest"
IDENTITY = ["exchange", "symbol", "trade_id"]

_ARROW_TYPES = {
    "BOOLEAN": pa.bool_(), "STRING": pa.string(), "DECIMAL(18,8)": pa.decimal128(18, 8),
    "BIGINT": pa.int64(),
}
# Kafka coordinates and bytes, then the contract's verdict (the same columns Flink gets).
PARSED_SCHEMA = (
    "kafka_partition INT, kafka_offset BIGINT, kafka_timestamp TIMESTAMP, key BINARY, "
    "value BINARY, " + ", ".join(f"{name} {sql}" for name, sql in VERDICT_FIELDS)
)
_ARROW_PARSED = pa.schema([
    ("kafka_partition", pa.int32()), ("kafka_offset", pa.int64()),
    ("kafka_timestamp", pa.timestamp("us", tz="UTC")), ("key", pa.binary()),
    ("value", pa.binary()),
    *((name, _ARROW_TYPES[sql]) for name, sql in VERDICT_FIELDS),
])


def parse_batches(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Apply the trade contract to Kafka records (runs in Spark's Python workers)."""
    verdict_names = [name for name, _ in VERDICT_FIELDS]
    for batch in batches:
        values = batch.column("value").to_pylist()
        verdicts = list(zip(*map(verdict, values), strict=True)) if values else [
            () for _ in verdict_names]
        cols: dict[str, list[Any]] = {
            "kafka_partition": batch.column("partition").to_pylist(),
            "kafka_offset": batch.column("offset").to_pylist(),
            "kafka_timestamp": batch.column("timestamp").to_pylist(),
            "key": batch.column("key").to_pylist(),
            "value": values,
            **{name: list(col) for name, col in zip(verdict_names, verdicts, strict=True)},
        }
        yield pa.RecordBatch.from_pydict(cols, schema=_ARROW_PARSED)


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


@dataclass
class IngestRun:
    run_id: int
    redo: bool
    partitions: dict[int, PartitionCounts] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def records(self) -> int:
        return sum(p.records for p in self.partitions.values())

    @property
    def balanced(self) -> bool:
        return all(p.balanced for p in self.partitions.values())


class Ingest:
    """One topic into the raw tables; `run()` ingests what is there now, in runs."""

    def __init__(self, settings: Settings, spark: SparkSession, *, topic: str | None = None,
                 max_records_per_partition: int = 5_000_000) -> None:
        self.settings = settings
        self.spark = spark
        self.topic = topic or settings.topic
        self.max_per_partition = max_records_per_partition
        self.trades_uri = settings.table_uri("raw", "trades")
        self.rejects_uri = settings.table_uri("raw", "rejects")
        self.ledger_uri = settings.table_uri("meta", "ingest_runs")

    # --- the ledger ---------------------------------------------------------------------

    def _ledger(self) -> list[dict[str, Any]]:
        from delta.tables import DeltaTable

        if not DeltaTable.isDeltaTable(self.spark, self.ledger_uri):
            return []
        rows = (self.spark.read.format("delta").load(self.ledger_uri)
                .where(f"topic = '{self.topic}'").collect())
        return [r.asDict() for r in rows]

    def _append_ledger(self, run_id: int, status: str, counts: dict[int, PartitionCounts]
                       ) -> None:
        now = datetime.now(UTC)
        rows = [
            (run_id, self.topic, p, c.start, c.end, status, c.records, c.accepted, c.rejected,
             c.duplicates, now)
            for p, c in sorted(counts.items())
        ]
        schema = ("run_id BIGINT, topic STRING, kafka_partition INT, start_offset BIGINT, "
                  "end_offset BIGINT, status STRING, records BIGINT, accepted BIGINT, "
                  "rejected BIGINT, duplicates BIGINT, at TIMESTAMP")
        (self.spark.createDataFrame(rows, schema).write.format("delta").mode("append")
         .option("txnAppId", f"{TXN_APP_ID}-ledger-{status}-{self.topic}")
         .option("txnVersion", run_id).save(self.ledger_uri))

    def _kafka_offsets(self) -> tuple[dict[int, int], dict[int, int]]:
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=self.settings.bootstrap_servers)
        try:
            parts = consumer.partitions_for_topic(self.topic)
            if not parts:
                raise RuntimeError(f"topic {self.topic!r} does not exist")
            tps = [TopicPartition(self.topic, p) for p in sorted(parts)]
            begin = {tp.partition: off for tp, off in consumer.beginning_offsets(tps).items()}
            end = {tp.partition: off for tp, off in consumer.end_offsets(tps).items()}
            return begin, end
        finally:
            consumer.close()

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
        last_end: dict[int, int] = {}
        for r in ledger:
            if r["status"] == "committed":
                p = r["kafka_partition"]
                last_end[p] = max(last_end.get(p, 0), r["end_offset"])
        begin, end = self._kafka_offsets()
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
        return (
            self.spark.read.format("kafka")
            .option("kafka.bootstrap.servers", self.settings.bootstrap_servers)
            .option("subscribe", self.topic)
            .option("startingOffsets", json.dumps(starting))
            .option("endingOffsets", json.dumps(ending))
            .option("kafka.isolation.level", "read_committed")
            .load()
            .select("partition", "offset", "timestamp", "key", "value")
        )

    def _classify(self, parsed: DataFrame, run_id: int) -> DataFrame:
        """Every record with `outcome` accepted / rejected / duplicate."""
        from delta.tables import DeltaTable
        from pyspark.sql import Window
        from pyspark.sql import functions as F  # noqa: N812

        order = Window.partitionBy(*IDENTITY).orderBy("kafka_partition", "kafka_offset")
        ranked = parsed.withColumn(
            "rank", F.when(F.col("ok"), F.row_number().over(order)).otherwise(F.lit(None))
        )
        if DeltaTable.isDeltaTable(self.spark, self.trades_uri):
            # Trades of earlier runs only: a redone run must not see its own rows.
            seen = (self.spark.read.format("delta").load(self.trades_uri)
                    .where(F.col("ingest_run") != run_id)
                    .select(*IDENTITY).withColumn("seen", F.lit(True)))
            ranked = ranked.join(seen, IDENTITY, "left")
        else:
            ranked = ranked.withColumn("seen", F.lit(None).cast("boolean"))
        return ranked.withColumn(
            "outcome",
            F.when(~F.col("ok"), F.lit("rejected"))
            .when((F.col("rank") > 1) | F.col("seen").isNotNull(), F.lit("duplicate"))
            .otherwise(F.lit("accepted")),
        )

    def run_once(self) -> IngestRun | None:
        """Plan and execute one run; None when there is nothing new."""
        from pyspark import StorageLevel
        from pyspark.sql import functions as F  # noqa: N812

        t0 = time.monotonic()
        run_id, ranges, redo = self.plan()
        if not redo and all(c.end <= c.start for c in ranges.values()):
            return None
        if not redo:
            self._append_ledger(run_id, "planned", ranges)
        parsed = self._read(ranges).mapInArrow(parse_batches, PARSED_SCHEMA)
        classified = self._classify(parsed, run_id).withColumn(
            "ingested_at", F.current_timestamp()
        ).withColumn("ingest_run", F.lit(run_id).cast("bigint"))
        classified.persist(StorageLevel.MEMORY_AND_DISK)
        try:
            for row in classified.groupBy("kafka_partition", "outcome").count().collect():
                c = ranges[row["kafka_partition"]]
                c.records += row["count"]
                if row["outcome"] == "accepted":
                    c.accepted += row["count"]
                else:
                    c.rejected += row["count"]
                    if row["outcome"] == "duplicate":
                        c.duplicates += row["count"]
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
            trades = classified.where("outcome = 'accepted'").select(
                *IDENTITY, "price", "qty", "side", "ts",
                F.to_date(F.timestamp_millis("ts")).alias("trade_date"),
                "kafka_partition", "kafka_offset", "ingested_at", "ingest_run",
            )
            (trades.write.format("delta").mode("append").partitionBy("trade_date")
             .option("txnAppId", f"{TXN_APP_ID}-trades-{self.topic}")
             .option("txnVersion", run_id).save(self.trades_uri))
        finally:
            classified.unpersist()
        self._append_ledger(run_id, "committed", ranges)
        return IngestRun(run_id, redo, ranges, time.monotonic() - t0)

    def run(self, progress: Any = None) -> list[IngestRun]:
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
