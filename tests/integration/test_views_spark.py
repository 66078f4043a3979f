"""Every view declaration compiled for Spark, checked against the plain-Python oracle."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC
from typing import Any

import pytest
from pyspark.sql import SparkSession

from batch_layer.spark_views import partials
from shared.views import VIEWS, View
from tests.oracle import view_rows
from tests.view_cases import EDGE_TRADES

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
