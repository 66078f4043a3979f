"""shared.partials: the speed job's topics and their rows."""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa

from shared.config import Settings
from shared.partials import json_decoder, partials_topic, rejects_topic

SCHEMA = pa.schema([("id", pa.string()), ("price", pa.decimal128(18, 8)), ("n", pa.int64())])


def test_decimals_are_exact_from_numbers_and_strings() -> None:
    decode = json_decoder(SCHEMA)
    # 0.1 + 0.2 style values would be wrong through float; 17 significant digits too.
    row = decode(b'{"id": "a", "price": 1234567890.12345678, "n": 3}')
    assert row["price"] == Decimal("1234567890.12345678")
    row = decode(b'{"id": "b", "price": "0.10000000", "n": 4}')
    assert row["price"] == Decimal("0.10000000")
    table = pa.Table.from_pylist([row], schema=SCHEMA)
    assert table.column("price")[0].as_py() == Decimal("0.10000000")


def test_null_decimal_stays_null() -> None:
    assert json_decoder(SCHEMA)(b'{"id": "c", "price": null, "n": 1}')["price"] is None


def test_iso_timestamps_are_utc() -> None:
    from datetime import UTC, datetime

    schema = pa.schema([("window_start", pa.timestamp("us", tz="UTC"))])
    row = json_decoder(schema)(b'{"window_start": "2025-11-22T08:26:00"}')
    assert row["window_start"] == datetime(2025, 11, 22, 8, 26, tzinfo=UTC)
    table = pa.Table.from_pylist([row], schema=schema)
    assert table.column("window_start")[0].as_py() == datetime(2025, 11, 22, 8, 26, tzinfo=UTC)


def test_topics_follow_the_source_topic() -> None:
    settings = Settings(topic="trades")
    assert partials_topic(settings) == "trades.speed.partials"
    assert rejects_topic(settings, "other") == "other.speed.rejects"
