"""Spark writes a Delta table; Trino reads it through catalog `lake`, exactly."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from serving_layer.trino import query, register_table
from shared.config import Settings

pytestmark = pytest.mark.integration


def test_trino_reads_what_spark_wrote_with_exact_decimals(
    stack: Settings, spark: Any, unique: str
) -> None:
    from pyspark.sql.types import (
        DecimalType,
        LongType,
        StringType,
        StructField,
        StructType,
        TimestampType,
    )

    rows = [
        ("BTC-USDT", Decimal("64250.12000000"), Decimal("0.01500000"),
         datetime(2026, 11, 22, 8, 26, 40, 123000, tzinfo=UTC), 1),
        ("BTC-USDT", Decimal("9999999999.99999999"), Decimal("0.00000001"),
         datetime(2026, 11, 22, 8, 27, 0, tzinfo=UTC), 2),
        ("ETH-USDT", Decimal("0.00000001"), Decimal("9999999999.99999999"),
         datetime(2026, 11, 22, 23, 59, 59, 999000, tzinfo=UTC), 3),
    ]
    schema = StructType([
        StructField("symbol", StringType(), False),
        StructField("price", DecimalType(18, 8), False),
        StructField("qty", DecimalType(18, 8), False),
        StructField("event_time", TimestampType(), False),
        StructField("n", LongType(), False),
    ])
    table = f"it_spark_{unique}"
    spark.createDataFrame(rows, schema).write.format("delta").save(stack.table_uri("meta", table))

    assert register_table(stack, "meta", table) is True
    assert register_table(stack, "meta", table) is False  # idempotent

    got = query(
        stack, f"SELECT symbol, price, qty, event_time, n FROM lake.meta.{table} ORDER BY n"
    )
    assert [(r[0], r[1], r[2], r[4]) for r in got] == [(r[0], r[1], r[2], r[4]) for r in rows]
    # Trino returns TIMESTAMP WITH TIME ZONE for Delta timestamps: same instants.
    assert [r[3].astimezone(UTC) for r in got] == [r[3] for r in rows]

    # Exact arithmetic in Trino matches the plain-decimal oracle.
    notional = query(
        stack, f"SELECT sum(CAST(price * qty AS DECIMAL(38,16))) FROM lake.meta.{table}"
    )[0][0]
    assert notional == sum((p * q for _, p, q, _, _ in rows), Decimal(0))
