"""A small ingest run done by the driver alone: Kafka -> raw tables without a Spark job.

A quiet stream gives `concord batch run` a few hundred messages every few minutes. The
Spark form of a run (batch_layer.ingest) pays ~10 s of job and commit overhead whatever
its size (a Kafka source, a Python worker, six jobs, three Delta commits), so a run of at
most `DRIVER_RUN` records is done here instead: read with a librdkafka consumer, judged
by the contract's Python code (shared.contract.verdict, the one definition), deduped and
appended with delta-rs. Same semantics, same Delta transactions (app id per table,
version = run id), so a run begun by one form is completed by the other without a repeat:
- first occurrence in Kafka (partition, offset) order wins, within the run and across
  runs (the identity compared exactly, never by hash alone);
- the identity index (lake.raw.trade_ids) is looked up by the same hash Spark writes
  (`id_hash`: Spark's xxhash64 of the three columns, seed 42), and only the raw.trades
  partitions of the dates it names for the run's hashes are read for the comparison;
- each table's append is skipped when the table's transaction already holds the run
  (shared.tables.append_once).
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa

from infra import kafka
from shared.config import Settings
from shared.contract import VERDICT_FIELDS, Reason, verdict
from shared.tables import open_table

# Runs of at most this many records are done by the driver.
DRIVER_RUN = 20_000
# How long reading a run's offset range may take before the run fails (a range the
# broker no longer serves, or an open transaction holding the stable offset back).
READ_TIMEOUT_S = 120.0

Identity = tuple[str, str, str]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FIELD = {name: i for i, (name, _) in enumerate(VERDICT_FIELDS)}


def id_hash(exchange: str, symbol: str, trade_id: str) -> int:
    """Spark's `xxhash64(exchange, symbol, trade_id)`: each column's UTF-8 bytes hashed
    with the previous column's hash as the seed, starting at 42; a signed 64-bit value."""
    import xxhash

    seed = 42
    for column in (exchange, symbol, trade_id):
        seed = xxhash.xxh64_intdigest(column.encode(), seed)
    signed: int = struct.unpack("<q", struct.pack("<Q", seed))[0]
    return signed


@dataclass(frozen=True, slots=True)
class Record:
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None


def read_range(settings: Settings, topic: str, ranges: Mapping[int, tuple[int, int]],
               timeout_s: float = READ_TIMEOUT_S) -> list[Record]:
    """Every committed record of `topic` in [start, end) per partition, in Kafka order."""
    from confluent_kafka import KafkaError, KafkaException, TopicPartition

    todo = {p: (s, e) for p, (s, e) in ranges.items() if e > s}
    out: list[Record] = []
    if not todo:
        return out
    consumer = kafka.confluent_consumer(
        settings, **{"group.id": f"concord-ingest-{topic}", "client.id": "concord-ingest",
                     "isolation.level": "read_committed", "enable.partition.eof": True,
                     # An offset Kafka no longer has is an error, never a silent skip.
                     "auto.offset.reset": "error"})
    try:
        consumer.assign([TopicPartition(topic, p, s) for p, (s, _) in todo.items()])
        pending = set(todo)
        deadline = time.monotonic() + timeout_s
        while pending:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"topic {topic!r}: offsets up to {dict((p, todo[p][1]) for p in pending)} "
                    f"not readable within {timeout_s:.0f} s (deleted by retention, or an "
                    "open producer transaction); the run is retried by the next call")
            for rec in consumer.consume(10_000, timeout=0.2):
                error, p, offset = rec.error(), rec.partition(), rec.offset()
                if error is not None and error.code() != KafkaError._PARTITION_EOF:
                    raise KafkaException(error)
                if p is None or offset is None or offset >= todo[p][1]:
                    if error is not None and p is not None and offset is not None:
                        pending.discard(p)  # end of partition, at or past the range's end
                    continue
                if error is None:
                    _, ms = rec.timestamp()
                    out.append(Record(p, offset, ms, rec.key(), rec.value()))
            for tp in consumer.position([TopicPartition(topic, p) for p in pending]):
                if tp.offset >= todo[tp.partition][1]:
                    pending.discard(tp.partition)
    finally:
        consumer.close()
    out.sort(key=lambda r: (r.partition, r.offset))
    return out


def _identity(v: tuple[Any, ...]) -> Identity:
    """The dedupe identity of a verdict (VERDICT_FIELDS order) of a valid trade."""
    return (v[_FIELD["exchange"]], v[_FIELD["symbol"]], v[_FIELD["trade_id"]])


@dataclass(frozen=True, slots=True)
class Judged:
    record: Record
    verdict: tuple[Any, ...]  # shared.contract.verdict, VERDICT_FIELDS order
    outcome: str  # accepted, rejected or duplicate

    @property
    def identity(self) -> Identity:
        return _identity(self.verdict)


def judge(records: Sequence[Record],
          earlier: Callable[[dict[int, set[Identity]]], set[Identity]]) -> list[Judged]:
    """Each record's verdict and outcome. `earlier(hashes)` gets the run's valid
    identities by `id_hash` and returns those already in raw.trades from other runs."""
    verdicts = [verdict(r.value) for r in records]
    ok = _FIELD["ok"]
    by_hash: dict[int, set[Identity]] = {}
    for v in verdicts:
        if v[ok]:
            identity = _identity(v)
            by_hash.setdefault(id_hash(*identity), set()).add(identity)
    seen = set(earlier(by_hash)) if by_hash else set()
    out = []
    for r, v in sorted(zip(records, verdicts, strict=True),
                       key=lambda rv: (rv[0].partition, rv[0].offset)):
        if not v[ok]:
            out.append(Judged(r, v, "rejected"))
            continue
        identity = _identity(v)
        out.append(Judged(r, v, "duplicate" if identity in seen else "accepted"))
        seen.add(identity)
    return out


def earlier_identities(index_uri: str, trades_uri: str, run_id: int,
                       hashes: dict[int, set[Identity]]) -> set[Identity]:
    """The identities of `hashes` that raw.trades holds from runs other than `run_id`:
    the index names the trade dates of the hashes seen before; only those partitions of
    raw.trades are read, and compared by identity."""
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    index = open_table(index_uri)
    if index is None:
        return set()
    hits = index.to_pyarrow_dataset().to_table(
        columns=["trade_date"],
        filter=(ds.field("ingest_run") != run_id)
        & ds.field("id_hash").isin(pa.array(list(hashes), pa.int64())))
    dates = pc.unique(hits.column("trade_date")).to_pylist()
    trades = open_table(trades_uri) if dates else None
    if trades is None:
        return set()
    rows = trades.to_pyarrow_dataset().to_table(
        columns=["exchange", "symbol", "trade_id"],
        filter=ds.field("trade_date").isin(pa.array(dates, pa.date32()))
        & (ds.field("ingest_run") != run_id)).to_pydict()
    wanted = set().union(*hashes.values())
    return {i for i in zip(rows["exchange"], rows["symbol"], rows["trade_id"], strict=True)
            if i in wanted}


def _moment(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def trade_date(ts_ms: int) -> date:
    """The UTC date of an epoch-millisecond timestamp (raw.trades' partition)."""
    return _moment(ts_ms).date()


def reject_rows(judged: Iterable[Judged], run_id: int, now: datetime) -> list[dict[str, Any]]:
    """raw.rejects rows: the contract's reason, or `duplicate` naming the identity."""
    rows = []
    for j in judged:
        if j.outcome == "accepted":
            continue
        if j.outcome == "duplicate":
            reason, detail = Reason.DUPLICATE, (
                "(exchange, symbol, trade_id) = (" + ", ".join(j.identity) + ") seen before")
        else:
            reason, detail = j.verdict[_FIELD["reason"]], j.verdict[_FIELD["detail"]]
        r = j.record
        rows.append({"value": r.value, "key": r.key, "kafka_partition": r.partition,
                     "kafka_offset": r.offset, "kafka_timestamp": _moment(r.timestamp_ms),
                     "reason": reason, "detail": detail, "ingested_at": now,
                     "ingest_run": run_id})
    return rows


def trade_rows(judged: Iterable[Judged], run_id: int, now: datetime) -> list[dict[str, Any]]:
    """raw.trades rows of the accepted records."""
    rows = []
    for j in judged:
        if j.outcome != "accepted":
            continue
        v = {name: j.verdict[i] for name, i in _FIELD.items()}
        rows.append({"exchange": v["exchange"], "symbol": v["symbol"],
                     "trade_id": v["trade_id"], "price": v["price"], "qty": v["qty"],
                     "side": v["side"], "ts": v["ts"], "trade_date": trade_date(v["ts"]),
                     "kafka_partition": j.record.partition, "kafka_offset": j.record.offset,
                     "ingested_at": now, "ingest_run": run_id})
    return rows
