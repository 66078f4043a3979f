"""The serving views in Trino: batch below the boundary + merged speed at/above it.

Both layers' tables hold every trade (batch as whole windows, speed as several partial
rows per window). Wherever the boundary is, each served view must equal the oracle:
no window missing, none counted twice; also when the batch table lacks windows below
the boundary (a reader racing a batch run). Rollups, spread and ticker likewise.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import asdict
from datetime import UTC, datetime
from decimal import Decimal
from functools import reduce
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from batch_layer.spark_views import partials
from producers.market import Market, MarketConfig
from serving_layer.client import Client
from serving_layer.refresh import refresh
from serving_layer.trino import query
from shared.config import Settings
from shared.contract import Trade
from shared.tables import BOUNDARIES, arrow_schema
from shared.views import VIEWS, View
from tests.oracle import accepted, view_rows, vwap

pytestmark = pytest.mark.integration

TRADES_DDL = ("exchange STRING, symbol STRING, trade_id STRING, price DECIMAL(18,8), "
              "qty DECIMAL(18,8), side STRING, ts BIGINT")
BAR_MEASURES = ["open", "high", "low", "close", "volume", "buy_volume", "notional",
                "trade_count"]


def _trades() -> list[Trade]:
    config = MarketConfig(seed=9, jitter_ms=3000, late_fraction=0.02, trades_per_second=40)
    return accepted(itertools.islice(Market(config).messages(), 12_000))


def _served(settings: Settings, name: str, keys: list[str]) -> dict[tuple[Any, ...], Any]:
    rows = query(settings, f"SELECT * FROM lake.serving.{name}")
    cols = [c[0] for c in query(settings, f"SHOW COLUMNS FROM lake.serving.{name}")]
    out = {}
    for values in rows:
        row = dict(zip(cols, values, strict=True))
        if "window_start" in row:
            row["window_start"] = row["window_start"].astimezone(UTC)
        out[tuple(row.pop(k) for k in keys)] = row
    return out


def _publish(settings: Settings, run_id: int, boundary: datetime) -> None:
    rows = [{"view_name": v, "boundary": boundary, "run_id": run_id, "raw_version": 0,
             "published_at": datetime.now(UTC)} for v in VIEWS]
    write_deltalake(settings.table_uri("meta", "boundaries"),
                    pa.Table.from_pylist(rows, schema=arrow_schema(BOUNDARIES)), mode="append")


def _expected_rollup(trades: list[Trade], seconds: int) -> dict[tuple[Any, ...], Any]:
    rows = view_rows(trades, ("exchange", "symbol"), seconds, BAR_MEASURES)
    for row in rows.values():
        row["vwap"] = vwap(row["notional"], row["volume"])
    return rows


def test_served_views_equal_the_oracle_wherever_the_boundary_is(
    spark: SparkSession, stack: Settings, tmp_path: Path
) -> None:
    settings = stack.model_copy(update={"lake_uri": (tmp_path / "lake").as_uri()})
    trades = _trades()
    frame = spark.createDataFrame([asdict(t) for t in trades], TRADES_DDL)
    slices = [frame.where(F.pmod(F.hash("trade_id"), F.lit(3)) == k) for k in range(3)]
    view: View
    for view in VIEWS.values():
        partials(frame, view).write.format("delta").save(settings.table_uri("batch", view.name))
        speed: DataFrame = reduce(DataFrame.unionByName, [partials(s, view) for s in slices])
        (speed.withColumn("emitted_at", F.current_timestamp())
         .write.format("delta").save(settings.table_uri("speed", view.name)))
    lines = refresh(settings)
    assert "lake.serving.bars_1m: view" in lines and "lake.serving.ticker: view" in lines
    assert refresh(settings)  # idempotent

    minutes = sorted({datetime.fromtimestamp(t.ts // 60_000 * 60, tz=UTC) for t in trades})
    boundaries = [None, minutes[len(minutes) // 3], minutes[2 * len(minutes) // 3],
                  datetime(2100, 1, 1, tzinfo=UTC)]
    for run_id, boundary in enumerate(boundaries):
        if boundary is not None:
            _publish(settings, run_id, boundary)
        for view in VIEWS.values():
            got = _served(settings, view.name, [*view.keys, "window_start"])
            expected = view_rows(trades, view.keys, view.window_seconds,
                                 [m.name for m in view.measures],
                                 [d.name for d in view.derived])
            assert got == expected, (view.name, boundary)

    # A reader pairing a new boundary with the batch snapshot from before the run that
    # published it: the batch table lacks the windows between the old and the new
    # boundary (batch_layer.run writes windows below its boundary only). They must be
    # served from the speed rows: none missing.
    old, new = boundaries[1], boundaries[2]
    assert old is not None and new is not None
    for view in VIEWS.values():
        DeltaTable(settings.table_uri("batch", view.name)).delete(
            f"window_start >= '{old.strftime('%Y-%m-%dT%H:%M:%SZ')}'")
    _publish(settings, len(boundaries), new)
    for view in VIEWS.values():
        got = _served(settings, view.name, [*view.keys, "window_start"])
        assert got == view_rows(trades, view.keys, view.window_seconds,
                                [m.name for m in view.measures],
                                [d.name for d in view.derived]), view.name

    keys = ["exchange", "symbol", "window_start"]
    assert _served(settings, "bars_5m", keys) == _expected_rollup(trades, 300)
    assert _served(settings, "bars_1h", keys) == _expected_rollup(trades, 3600)

    bars = view_rows(trades, ("exchange", "symbol"), 60, ["close"])
    closes: dict[tuple[str, datetime], list[tuple[Decimal, str]]] = defaultdict(list)
    for (exchange, symbol, start), row in bars.items():
        closes[(symbol, start)].append((row["close"], exchange))
    spread = _served(settings, "spread_1m", ["symbol", "window_start"])
    assert set(spread) == set(closes)
    for key, values in closes.items():
        assert spread[key]["spread"] == max(values)[0] - min(values)[0]
        assert spread[key]["exchanges"] == len(values)

    latest: dict[tuple[str, str], Trade] = {}
    for t in trades:
        best = latest.get((t.exchange, t.symbol))
        if best is None or (t.ts, t.trade_id) > (best.ts, best.trade_id):
            latest[(t.exchange, t.symbol)] = t
    ticker = _served(settings, "ticker", ["exchange", "symbol"])
    assert {k: (v["price"], int(v["ts"].timestamp() * 1000)) for k, v in ticker.items()} == {
        k: (t.price, t.ts) for k, t in latest.items()}

    # The analysts' client reads the same views: typed, exact, ordered.
    client = Client(settings)
    some = trades[0]
    book = client.bars(some.exchange, some.symbol)
    one_book = {k[2]: v for k, v in _served(settings, "bars_1m",
                                              ["exchange", "symbol", "window_start"]).items()
                if k[:2] == (some.exchange, some.symbol)}
    assert list(book["window_start"]) == sorted(one_book)
    assert list(book["close"]) == [one_book[w]["close"] for w in sorted(one_book)]
    assert isinstance(book["close"][0], Decimal)
    middle = sorted(one_book)[len(one_book) // 2]
    later = client.bars(some.exchange, some.symbol, start=middle, output="arrow")
    assert isinstance(later, pa.Table)
    vwap_type = later.schema.field("vwap").type
    assert pa.types.is_decimal(vwap_type) and vwap_type.scale == 8  # exact, as Trino types it
    assert later.num_rows == len([w for w in one_book if w >= middle])
    assert len(client.bars(some.exchange, some.symbol, interval="1h")) == len(
        {k for k in _expected_rollup(trades, 3600) if k[:2] == (some.exchange, some.symbol)})
    assert len(client.ticker()) == len(latest)
    assert list(client.ticker(exchange=some.exchange)["exchange"].unique()) == [some.exchange]
    assert len(client.spread(some.symbol)) == len({k for k in closes if k[0] == some.symbol})
    got = client.query("SELECT count(*) AS n FROM lake.serving.bars_1m WHERE symbol = ?",
                       [some.symbol], output="arrow")
    assert got.column("n").to_pylist() == [len([k for k in bars if k[1] == some.symbol])]
