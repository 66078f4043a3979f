"""Kafka -> Delta committer: the speed layer's sink to the lake.

Why this exists: Delta's own Flink connector is not usable here (io.delta:delta-flink
is not on Maven Central for Flink 2.x; the 3.x connector targets the Flink 1.x Sink
API removed in 2.0). So, as DESIGN.md's fallback says, the Flink job writes its rows
to a Kafka topic with its exactly-once (transactional) sink, and this committer moves
committed records into a Delta table with the `deltalake` (delta-rs) writer.

Durability and retries (the contract):
- A record becomes durable in Delta when the commit holding it succeeds. Each commit
  carries, per Kafka partition, a Delta `txn` action (app id `<app_id>/<partition>`,
  version = last offset written). Offsets are thus stored atomically with the data.
- On start, and after any failure, the committer reads those versions from the table
  and resumes at offset + 1. A commit that was written but not acknowledged is seen
  as written; one that never landed is redone. No record is lost or written twice.
- Only a table that does not exist means "nothing committed yet". A table that cannot
  be read is retried a few times (shared.tables.open_table) and then the error is
  raised: the committer stops rather than start over from offset 0 and append again
  what the table already holds.
- A commit Delta refuses for a concurrent one (a `batch run` deleting expired speed
  rows at that moment: "a concurrent transaction deleted data this operation read") is
  retried the same way: back to the table's offsets, the same records fetched and
  committed again. Before, it ended the speed job (bench.faults found it: 2 deaths in
  70 minutes with a batch run every 45 s).
- Only committed Kafka transactions are read (isolation read_committed), so records of
  a Flink checkpoint that was aborted never reach the lake.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from deltalake import CommitProperties, Transaction, write_deltalake
from deltalake.exceptions import CommitFailedError

from infra import kafka
from shared.config import Settings
from shared.errors import first_line
from shared.partials import Decoder, json_decoder
from shared.tables import open_table

# What the committer writes for the records of one poll (e.g. partial rows regrouped).
Transform = Callable[[list[Mapping[str, Any]]], list[dict[str, Any]]]


# Upper bounds (seconds) of the commit latency histogram the exporter serves.
COMMIT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class CommitStats:
    commits: int = 0
    records: int = 0
    per_partition: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0  # all commits' write time together
    # commits per COMMIT_BUCKETS bound (not cumulative); the last: slower than all bounds
    latency_counts: list[int] = field(default_factory=lambda: [0] * (len(COMMIT_BUCKETS) + 1))
    last_commit_at: float | None = None
    conflicts: int = 0  # commits Delta refused for a concurrent one, then retried

    def count(self, records: int, seconds: float) -> None:
        self.commits += 1
        self.records += records
        self.seconds += seconds
        self.latency_counts[sum(seconds > bound for bound in COMMIT_BUCKETS)] += 1
        self.last_commit_at = time.time()

    def as_dict(self) -> dict[str, Any]:
        return {"commits": self.commits, "records": self.records, "seconds": self.seconds,
                "buckets": list(COMMIT_BUCKETS), "latency_counts": self.latency_counts,
                "last_commit_at": self.last_commit_at, "conflicts": self.conflicts}


class DeltaCommitter:
    """Moves committed records of one Kafka topic into one Delta table, exactly once."""

    def __init__(
        self,
        settings: Settings,
        *,
        topic: str,
        table_uri: str,
        schema: pa.Schema,
        app_id: str,
        decoder: Decoder | None = None,
        transform: Transform | None = None,
        partition_by: list[str] | None = None,
        max_batch: int = 50_000,
    ) -> None:
        self.topic = topic
        self.table_uri = table_uri
        self.schema = schema
        self.app_id = app_id
        self.decoder = decoder or json_decoder(schema)
        self.transform = transform
        self.partition_by = partition_by
        self.max_batch = max_batch
        self.stats = CommitStats()
        # Partitions are assigned, never subscribed: the group id is librdkafka's
        # requirement only, no offset is ever committed to Kafka (the table holds them).
        self._consumer = kafka.confluent_consumer(
            settings,
            **{"group.id": f"concord-committer-{app_id}",
               "client.id": f"concord-committer-{app_id}",
               "isolation.level": "read_committed",
               # A fetch the broker holds while the topic is quiet: short, so a commit
               # of the speed job's transaction reaches this committer at once.
               "fetch.wait.max.ms": 100},
        )
        meta = self._consumer.list_topics(topic, timeout=30).topics.get(topic)
        if meta is None or meta.error is not None or not meta.partitions:
            raise RuntimeError(f"topic {topic!r} does not exist or has no partitions")
        self._partitions = sorted(meta.partitions)
        self._seek_to_committed()

    def _txn_id(self, partition: int) -> str:
        return f"{self.app_id}/{partition}"

    def committed_offsets(self) -> dict[int, int]:
        """Last offset already in the table per partition (-1: none, the table does not
        exist yet). An unreadable table raises (shared.tables.LakeReadError)."""
        table = open_table(self.table_uri)
        if table is None:
            return dict.fromkeys(self._partitions, -1)
        out = {}
        for partition in self._partitions:
            version = table.transaction_version(self._txn_id(partition))
            out[partition] = -1 if version is None else int(version)
        return out

    def _seek_to_committed(self) -> None:
        """(Re)assign every partition at the offset after the last one in the table; what
        the consumer had fetched beyond it is dropped."""
        self._consumer.assign([TopicPartition(self.topic, partition, offset + 1)
                               for partition, offset in self.committed_offsets().items()])

    def _fetch(self, timeout_ms: int) -> list[Any]:
        """Up to max_batch records fetched so far; when there are none, the first to
        arrive within `timeout_ms` and what came with it."""
        records = self._consumer.consume(self.max_batch, timeout=0)
        if not records and timeout_ms > 0:
            first = self._consumer.poll(timeout_ms / 1000)
            if first is not None:
                records = [first, *self._consumer.consume(self.max_batch - 1, timeout=0)]
        for rec in records:
            error = rec.error()
            if error is not None and error.code() != KafkaError._PARTITION_EOF:
                raise KafkaException(error)
        return [rec for rec in records if rec.error() is None]

    def poll_once(self, timeout_ms: int = 1000) -> int:
        """Read what is available (up to max_batch; waiting up to `timeout_ms` when nothing
        is) and commit it (transformed, if the committer has a transform); returns the
        records it consumed."""
        rows: list[Mapping[str, Any]] = []
        last: dict[int, int] = {}
        for rec in self._fetch(timeout_ms):
            value = rec.value()
            if value is not None:
                rows.append(self.decoder(value))
            last[rec.partition()] = rec.offset()
        if not last:
            return 0
        out = self.transform(rows) if self.transform is not None else rows
        if not self._commit(out, last):
            return 0  # a conflict: the same records are fetched again and recommitted
        return len(rows)

    def _commit(self, rows: Sequence[Mapping[str, Any]], last: dict[int, int]) -> bool:
        """Append `rows` with the partitions' last offsets; False when Delta refused the
        commit for a concurrent one (the consumer is then back at the table's offsets)."""
        data = pa.Table.from_pylist(list(rows), schema=self.schema)
        now_ms = int(time.time() * 1000)
        txns = [Transaction(self._txn_id(p), off, now_ms) for p, off in sorted(last.items())]
        began = time.monotonic()
        try:
            write_deltalake(
                self.table_uri,
                data,
                mode="append",
                partition_by=self.partition_by,
                commit_properties=CommitProperties(app_transactions=txns),
            )
        except CommitFailedError as exc:
            # A concurrent commit conflicted (a batch run's maintenance deleting expired
            # rows, seen by bench.faults): nothing of ours was written. Resume from the
            # table's offsets; the next poll fetches the same records and commits again.
            self.stats.conflicts += 1
            self._seek_to_committed()
            print(f"commit to {self.table_uri} conflicted with a concurrent commit, "
                  f"retrying ({first_line(exc) or type(exc).__name__})", file=sys.stderr,
                  flush=True)
            return False
        except Exception:
            # Whatever happened, the table is the truth: resume from what it holds.
            self._seek_to_committed()
            raise
        self.stats.count(len(rows), time.monotonic() - began)
        for p, off in last.items():
            self.stats.per_partition[p] = off
        return True

    def run(self, *, until: Callable[[], bool], idle_sleep_s: float = 0.05) -> CommitStats:
        """Commit continuously until `until()` is true."""
        while not until():
            if self.poll_once() == 0:
                time.sleep(idle_sleep_s)
        return self.stats

    def close(self) -> None:
        self._consumer.close()
