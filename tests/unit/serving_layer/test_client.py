"""serving_layer.client's conversion of Trino results (in memory)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pyarrow as pa
import pytest

from serving_layer.client import Client, arrow_type, to_arrow
from shared.config import Settings


def test_trino_types_map_to_exact_arrow_types() -> None:
    assert arrow_type("decimal(18,8)") == pa.decimal128(18, 8)
    assert arrow_type("decimal(38, 16)") == pa.decimal128(38, 16)
    assert arrow_type("timestamp(3) with time zone") == pa.timestamp("ms", tz="UTC")
    assert arrow_type("timestamp(6)") == pa.timestamp("us")
    assert arrow_type("varchar(12)") == pa.string()
    assert arrow_type("bigint") == pa.int64()
    assert arrow_type("array(varchar)") is None  # left to Arrow


def test_rows_become_a_typed_table_with_utc_times() -> None:
    ts = datetime(2026, 1, 1, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    table = to_arrow([("price", "decimal(18,8)"), ("ts", "timestamp(3) with time zone"),
                      ("n", "bigint")],
                     [[Decimal("64250.12345678"), ts, 3], [None, None, None]])
    assert table.schema.field("price").type == pa.decimal128(18, 8)
    assert table.column("price").to_pylist() == [Decimal("64250.12345678"), None]
    assert table.column("ts").to_pylist()[0] == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    frame = table.to_pandas()
    assert frame["price"][0] == Decimal("64250.12345678")  # exact, not float
    assert to_arrow([("x", "bigint")], []).num_rows == 0


def test_bars_refuses_an_unknown_interval(tmp_path: object) -> None:
    with pytest.raises(ValueError, match="interval must be one of 1m, 5m, 1h"):
        Client(Settings()).bars("binance", "BTC-USDT", interval="2m")
