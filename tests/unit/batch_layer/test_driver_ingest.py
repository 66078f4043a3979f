"""The driver's small ingest run, on in-memory records (no Kafka, no lake)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from batch_layer.driver_ingest import (
    Identity,
    Record,
    id_hash,
    judge,
    reject_rows,
    trade_date,
    trade_rows,
)


def _trade(trade_id: str, symbol: str = "BTC-USDT", ts: int = 1_763_800_000_123) -> bytes:
    return (f'{{"exchange":"binance","symbol":"{symbol}","trade_id":"{trade_id}",'
            f'"price":"100.5","qty":"0.25","side":"buy","ts":{ts}}}').encode()


def test_first_occurrence_in_kafka_order_wins_within_and_across_runs() -> None:
    records = [
        Record(1, 7, 1000, b"k", _trade("2")),       # later offset of "2" in partition 1
        Record(0, 3, 1000, b"k", _trade("1")),
        Record(1, 5, 1000, b"k", _trade("2")),       # first "2": accepted
        Record(0, 4, 1000, b"k", b"not json"),
        Record(0, 5, 1000, None, _trade("9")),       # in raw.trades from an earlier run
        Record(0, 6, 1000, b"k", None),              # a null value
    ]
    asked: list[dict[int, set[Identity]]] = []

    def earlier(hashes: dict[int, set[Identity]]) -> set[Identity]:
        asked.append(hashes)
        return {("binance", "BTC-USDT", "9")}

    judged = judge(records, earlier)
    assert [(j.record.partition, j.record.offset, j.outcome) for j in judged] == [
        (0, 3, "accepted"), (0, 4, "rejected"), (0, 5, "duplicate"), (0, 6, "rejected"),
        (1, 5, "accepted"), (1, 7, "duplicate"),
    ]
    # The lookup gets every valid identity once, by its index hash.
    identities = {("binance", "BTC-USDT", t) for t in ("1", "2", "9")}
    assert asked == [{id_hash(*i): {i} for i in identities}]


def test_a_run_without_valid_trades_does_not_look_up_the_index() -> None:
    judged = judge([Record(0, 0, 1, None, b"{}")],
                   lambda hashes: (_ for _ in ()).throw(AssertionError("looked up")))
    assert [j.outcome for j in judged] == ["rejected"]


def test_rows_carry_the_verdict_the_coordinates_and_the_reasons() -> None:
    now = datetime(2026, 12, 2, tzinfo=UTC)
    judged = judge([Record(2, 10, 1_700_000_000_000, b"k", _trade("5")),
                    Record(2, 11, 1_700_000_000_001, b"k", _trade("5")),
                    Record(2, 12, 1_700_000_000_002, b"k", b"{")], lambda hashes: set())
    trades = trade_rows(judged, 7, now)
    assert trades == [{
        "exchange": "binance", "symbol": "BTC-USDT", "trade_id": "5",
        "price": Decimal("100.50000000"), "qty": Decimal("0.25000000"), "side": "buy",
        "ts": 1_763_800_000_123, "trade_date": date(2025, 11, 22), "kafka_partition": 2,
        "kafka_offset": 10, "ingested_at": now, "ingest_run": 7}]
    rejects = reject_rows(judged, 7, now)
    assert [(r["kafka_offset"], r["reason"]) for r in rejects] == [
        (11, "duplicate"), (12, rejects[1]["reason"])]
    assert rejects[0]["detail"] == (
        "(exchange, symbol, trade_id) = (binance, BTC-USDT, 5) seen before")
    assert rejects[1]["reason"] not in (None, "duplicate") and rejects[1]["detail"]
    assert rejects[0]["kafka_timestamp"] == datetime(2023, 11, 14, 22, 13, 20, 1000, tzinfo=UTC)
    assert rejects[0]["value"] == _trade("5") and rejects[0]["key"] == b"k"


def test_trade_date_is_the_utc_date() -> None:
    assert trade_date(0) == date(1970, 1, 1)
    assert trade_date(86_400_000 - 1) == date(1970, 1, 1)
    assert trade_date(86_400_000) == date(1970, 1, 2)


def test_id_hash_is_sparks_xxhash64_of_the_three_columns() -> None:
    # Values Spark 4.2's xxhash64(e, s, t) returned for these rows (the integration test
    # tests/integration/test_ingest.py compares on generated trades with a live Spark).
    assert id_hash("binance", "BTC-USDT", "123456789") == -8841486293340059624
    assert id_hash("kraken", "ÉTH-€", "ü" * 40) == -1544557143596383909
