"""Every view declaration compiled for Spark, checked against the plain-Python oracle."""

from __future__ import annotations

import itertools
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import pytest
from pyspark.sql import SparkSession

from batch_layer.spark_views import MISFITS, partials
from producers.market import Market, MarketConfig
from shared.contract import Trade
from shared.views import VIEWS, Agg, Measure, View
from tests.oracle import accepted, view_rows
from tests.view_cases import EDGE_TRADES, T0, trade

pytestmark = pytest.mark.integration

TRADES_DDL = ("exchange STRING, symbol STRING, trade_id STRING, price DECIMAL(18,8), "
              "qty DECIMAL(18,8), side STRING, ts BIGINT")


@pytest.mark.parametrize("view", list(VIEWS.values()), ids=list(VIEWS))
def test_spark_partials_equal_the_oracle(spark: SparkSession, view: View) -> None:
    trades = spark.createDataFrame([asdict(t) for t in EDGE_TRADES], TRADES_DDL)
    rows = partials(trades, view).collect()
    measures = [m.name for m in view.measures]
    got: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rows:
        start = r["window_start"].replace(tzinfo=UTC)
        got[(*(r[k] for k in view.keys), start)] = {m: r[m] for m in measures}
    expected = view_rows(EDGE_TRADES, view.keys, view.window_seconds, measures)
    assert got == expected
    assert [c for c in partials(trades, view).columns] == [n for n, _ in view.partial_columns()]


def _generated(n: int) -> list[Trade]:
    """Distinct generated trades (sweeps share a ts), numeric ids, several books."""
    config = MarketConfig(seed=7, trades_per_second=400)
    return accepted(itertools.islice(Market(config).messages(), n))


# Numeric ids that are misfits of the fast form: a leading zero, a sign, whitespace
# (which a CAST would trim), too many digits; and a product that overflows a BIGINT.
MISFIT_TRADES: list[Trade] = [
    trade("007", "100", "1", ts=T0 + 7), trade("+8", "101", "1", ts=T0 + 7),
    trade("9 ", "102", "1", ts=T0 + 7), trade("12345678901234", "103", "1", ts=T0 + 7),
    trade("90", "9999999999.5", "9999999999.5", ts=T0 + 7),
]


@pytest.mark.parametrize("view", list(VIEWS.values()), ids=list(VIEWS))
def test_fast_partials_are_the_exact_ones(spark: SparkSession, view: View) -> None:
    """The fast compilation gives the exact one's rows, types and key strings included,
    where it takes the trades (no misfits); it counts a misfit in every group it cannot
    take exactly, and only there."""
    fits = _generated(3_000) + [t for t in EDGE_TRADES if t.trade_id in ("9", "10", "100", "1")]
    frame = spark.createDataFrame([asdict(t) for t in fits], TRADES_DDL)
    fast = partials(frame, view, fast=True)
    exact = partials(frame, view)
    assert fast.drop(MISFITS).schema == exact.schema
    assert fast.where(f"{MISFITS} > 0").count() == 0
    assert sorted(fast.drop(MISFITS).collect()) == sorted(exact.collect())

    every = fits + EDGE_TRADES[4:] + MISFIT_TRADES
    frame = spark.createDataFrame([asdict(t) for t in every], TRADES_DDL)
    fast_rows = {tuple(r[k] for k in (*view.keys, "window_start")): r
                 for r in partials(frame, view, fast=True).collect()}
    exact_rows = {tuple(r[k] for k in (*view.keys, "window_start")): r
                  for r in partials(frame, view).collect()}
    assert fast_rows.keys() == exact_rows.keys()
    ordered = any(m.agg in (Agg.FIRST, Agg.LAST) for m in view.measures)
    summed = any(_is_product(m) for m in view.measures)

    def misfit(t: Trade) -> bool:
        odd_id = not t.trade_id.isdigit() or t.trade_id[0] == "0" or len(t.trade_id) > 13
        return (ordered and odd_id) or (summed and t.price * t.qty >= 2**63)

    wanted = {(*(getattr(t, k) for k in view.keys),
               datetime.fromtimestamp(t.ts // view.window_ms * view.window_seconds,
                                      tz=UTC).replace(tzinfo=None))
              for t in every if misfit(t)}
    assert wanted
    for key, row in fast_rows.items():
        if row[MISFITS] == 0:
            assert row.asDict() | {MISFITS: 0} == exact_rows[key].asDict() | {MISFITS: 0}
    assert {key for key, row in fast_rows.items() if row[MISFITS] > 0} == wanted


def _is_product(m: Measure) -> bool:
    return m.input == "notional" and m.agg is Agg.SUM
