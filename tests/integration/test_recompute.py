"""Batch recompute with real Spark and Delta: raw.trades -> batch.<view>, checked by the oracle."""

from __future__ import annotations

import itertools
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from batch_layer.recompute import DRIVER_ROWS, Chunk, Recompute
from producers.market import Market, MarketConfig
from shared.config import Settings
from shared.contract import Trade
from shared.views import BARS_1M, FLOW_5M, View
from tests.oracle import accepted, view_rows

pytestmark = pytest.mark.integration

RAW_DDL = ("exchange STRING, symbol STRING, trade_id STRING, price DECIMAL(18,8), "
           "qty DECIMAL(18,8), side STRING, ts BIGINT")


def _trades(n: int) -> list[Trade]:
    """n distinct generated trades (late and out-of-order included), first occurrence wins."""
    config = MarketConfig(seed=3, jitter_ms=4000, late_fraction=0.02, trades_per_second=50)
    return accepted(itertools.islice(Market(config).messages(), n))


def _rows(spark: SparkSession, uri: str, view: View) -> dict[tuple[Any, ...], dict[str, Any]]:
    measures = [m.name for m in view.measures]
    return {(*(r[k] for k in view.keys), r["window_start"].replace(tzinfo=UTC)):
            {m: r[m] for m in measures}
            for r in spark.read.format("delta").load(uri).collect()}


@pytest.fixture
def lake(spark: SparkSession, stack: Settings, tmp_path: Path) -> tuple[Settings, list[Trade]]:
    settings = stack.model_copy(update={"lake_uri": (tmp_path / "lake").as_uri()})
    trades = _trades(30_000)
    frame = spark.createDataFrame([asdict(t) for t in trades], RAW_DDL)
    (frame.selectExpr("*", "to_date(timestamp_millis(ts)) AS trade_date")
     .write.format("delta").partitionBy("trade_date").save(settings.table_uri("raw", "trades")))
    return settings, trades


@pytest.mark.parametrize("driver_rows", [0, DRIVER_ROWS], ids=["spark", "driver"])
def test_recompute_writes_the_oracle_idempotently(
    spark: SparkSession, lake: tuple[Settings, list[Trade]], driver_rows: int
) -> None:
    """With `driver_rows` > 0 the first chunk creates the table with Spark's write and
    the driver commits the others (delta-rs); with 0, Spark writes every chunk."""
    settings, trades = lake
    first = min(t.ts for t in trades)
    last = max(t.ts for t in trades)
    start = datetime.fromtimestamp(first / 1000, tz=UTC)
    end = datetime.fromtimestamp(last / 1000, tz=UTC) + timedelta(milliseconds=1)
    job = Recompute(settings, spark, chunk=timedelta(minutes=4), driver_rows=driver_rows)
    seen: list[Chunk] = []
    for view in (BARS_1M, FLOW_5M):
        chunks = job.run(view, start, end, progress=seen.append)
        uri = job.view_uri(view)
        expected = view_rows(trades, view.keys, view.window_seconds,
                             [m.name for m in view.measures])
        assert _rows(spark, uri, view) == expected
        assert sum(c.trades for c in chunks) == len(trades)
        assert sum(c.rows for c in chunks) == len(expected)

        # Again, over a range inside: the same table (replaceWhere of the same windows).
        version = spark.sql(f"DESCRIBE HISTORY delta.`{uri}`").count()
        job.run(view, start + timedelta(minutes=3), start + timedelta(minutes=7))
        assert _rows(spark, uri, view) == expected
        assert spark.sql(f"DESCRIBE HISTORY delta.`{uri}`").count() > version
    assert len(seen) > 2  # chunks of 4 minutes, each reported

    # Trades removed from raw.trades: their windows are recomputed without them, and a
    # window left without trades has no row.
    from delta.tables import DeltaTable

    gone_lo = (first // 60_000 + 2) * 60_000
    gone_hi = gone_lo + 180_000
    DeltaTable.forPath(spark, job.trades_uri).delete(f"ts >= {gone_lo} AND ts < {gone_hi}")
    kept = [t for t in trades if not gone_lo <= t.ts < gone_hi]
    job.run(BARS_1M, datetime.fromtimestamp(gone_lo / 1000, tz=UTC),
            datetime.fromtimestamp(gone_hi / 1000, tz=UTC))
    expected = view_rows(kept, BARS_1M.keys, BARS_1M.window_seconds,
                         [m.name for m in BARS_1M.measures])
    assert _rows(spark, job.view_uri(BARS_1M), BARS_1M) == expected

