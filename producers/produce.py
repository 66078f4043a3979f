"""`concord produce`: send trade messages to Kafka, from the generator or from lines.

The producer is idempotent with acks=all: a message the broker acknowledged is
durable and a retry never duplicates it. Progress (sent, rate, errors) is printed
about once a second; a summary ends the run. Exit status is non-zero when any send
failed.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO

from infra import kafka
from producers.adapters import ADAPTERS, to_contract_json
from producers.market import Market, MarketConfig
from shared.config import Settings
from shared.contract import Trade, parse_trade


@dataclass
class ProduceReport:
    sent: int = 0
    acked: int = 0
    errors: int = 0
    unmapped: int = 0
    seconds: float = 0.0
    error_samples: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0


Record = tuple[bytes | None, bytes]

DEFAULT_SEED = 42
DEFAULT_COUNT = 10_000


def stream_seed(seed: int | None, *, live: bool) -> int:
    """The generator's seed: `seed` when given; else, for a live stream, one from the
    clock, so that a restarted stream never sends the trade ids of an earlier one again
    (the batch layer would rightly reject them all as duplicates); else DEFAULT_SEED, so
    a test stream is the same every time."""
    if seed is not None:
        return seed
    return time.time_ns() % 2**63 if live else DEFAULT_SEED


def stream_count(count: int | None, *, duration_s: float | None) -> int | None:
    """How many messages a generated stream sends: `count` when given, else as many as
    `duration_s` allows (None), else DEFAULT_COUNT."""
    if count is not None:
        return count
    return None if duration_s else DEFAULT_COUNT


def generated(config: MarketConfig, *, count: int | None, duration_s: float | None,
              live: bool = False) -> Iterator[Record]:
    """Messages of the synthetic market, until `count` or `duration_s` is reached.

    `live`: event times follow the wall clock (a trade's ts = the moment it is sent,
    less its jitter or lateness), for a stream that looks like a live market; a
    duplicate repeats the bytes of its original as sent.
    """
    deadline = time.monotonic() + duration_s if duration_s else None
    clock = float("-inf")  # the generator's event-time clock: newest on-time ts so far
    sent: dict[bytes, bytes] = {}  # original value -> value as sent (live duplicates)
    for i, msg in enumerate(Market(config).messages()):
        if (count is not None and i >= count) or (deadline and time.monotonic() >= deadline):
            return
        if not live or msg.fields is None:
            yield msg.key, msg.value
            continue
        if msg.kind == "duplicate":
            yield msg.key, sent.get(msg.value, msg.value)
            continue
        ts = msg.fields[6]
        if msg.kind == "trade":
            clock = max(clock, ts)
        now_ms = int(time.time() * 1000)
        head, _, _ = msg.value.rpartition(b'"ts":')
        value = head + b'"ts":' + str(max(0, now_ms + min(0, ts - int(clock)))).encode() + b"}"
        if len(sent) >= 20_000:
            sent.clear()
        sent[msg.value] = value
        yield msg.key, value


def from_lines(lines: Iterable[str], fmt: str, report: ProduceReport) -> Iterator[Record]:
    """One message per non-empty line. `concord` lines go verbatim; exchange formats are
    adapted, and a line the adapter cannot map is sent verbatim (to be rejected with a
    reason by the ingest, never dropped here)."""
    adapter = ADAPTERS.get(fmt)
    for line in lines:
        text = line.rstrip("\r\n")
        if not text:
            continue
        value = text.encode()
        if adapter is not None:
            adapted = adapter(text)
            if adapted is None:
                report.unmapped += 1
            else:
                value = to_contract_json(adapted)
        parsed = parse_trade(value)
        key = parsed.key.encode() if isinstance(parsed, Trade) else None
        yield key, value


def produce(
    settings: Settings,
    records: Iterable[Record],
    *,
    topic: str | None = None,
    rate: float | None = None,
    client: str = "confluent-kafka",
    report: ProduceReport | None = None,
    progress: IO[str] | None = sys.stderr,
) -> ProduceReport:
    """Send `records` at up to `rate` messages/s (None: as fast as possible).

    `client` is confluent-kafka (librdkafka; the default, see BENCHMARKS.md for why)
    or kafka-python. Both run idempotent with acks=all.
    """
    report = report or ProduceReport()
    topic = topic or settings.topic
    sender = (_confluent_sender if client == "confluent-kafka" else _kafka_python_sender)(
        settings, topic, report)
    started = time.monotonic()
    next_progress = started + 1.0
    try:
        for key, value in records:
            sender.send(key, value)
            report.sent += 1
            if rate:
                ahead = report.sent / rate - (time.monotonic() - started)
                if ahead > 0.002:
                    time.sleep(ahead)
            if report.sent % 1024 == 0:
                sender.poll()
                now = time.monotonic()
                if progress is not None and now >= next_progress:
                    elapsed = now - started
                    print(f"produce: sent {report.sent:,}  {report.sent / elapsed:,.0f} msg/s  "
                          f"acked {report.acked:,}  errors {report.errors}", file=progress,
                          flush=True)
                    next_progress = now + 1.0
        sender.flush()
    finally:
        sender.close()
        report.seconds = time.monotonic() - started
    return report


class _Sender:
    def send(self, key: bytes | None, value: bytes) -> None:
        raise NotImplementedError

    def poll(self) -> None:
        """Serve delivery reports."""

    def flush(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release the client."""


def _record_error(report: ProduceReport, error: object) -> None:
    report.errors += 1
    if len(report.error_samples) < 5:
        report.error_samples.append(str(error))


def _confluent_sender(settings: Settings, topic: str, report: ProduceReport) -> _Sender:
    producer = kafka.confluent_producer(settings, **{
        "linger.ms": 10,
        "batch.size": 1_000_000,
        "queue.buffering.max.messages": 1_000_000,
        "compression.type": "lz4",
    })

    def delivered(err: object, _msg: object) -> None:
        if err is None:
            report.acked += 1
        else:
            _record_error(report, err)

    class Confluent(_Sender):
        def send(self, key: bytes | None, value: bytes) -> None:
            while True:
                try:
                    producer.produce(topic, value=value, key=key, on_delivery=delivered)
                    return
                except BufferError:  # local queue full: let deliveries drain, then retry
                    producer.poll(0.05)

        def poll(self) -> None:
            producer.poll(0)

        def flush(self) -> None:
            remaining = producer.flush(120)
            if remaining:
                _record_error(report, f"{remaining} messages not delivered within 120 s")

    return Confluent()


def _kafka_python_sender(settings: Settings, topic: str, report: ProduceReport) -> _Sender:
    producer = kafka.producer(settings, linger_ms=10, batch_size=512 * 1024,
                              compression_type="lz4")

    def on_ok(_: object) -> None:
        report.acked += 1

    class KafkaPython(_Sender):
        def send(self, key: bytes | None, value: bytes) -> None:
            future = producer.send(topic, key=key, value=value)
            future.add_callback(on_ok).add_errback(lambda exc: _record_error(report, exc))

        def flush(self) -> None:
            producer.flush()

        def close(self) -> None:
            producer.close()

    return KafkaPython()
