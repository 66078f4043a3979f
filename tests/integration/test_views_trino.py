"""Partial rows merged by Trino equal the oracle: the measures are mergeable as declared.

Spark computes partial rows from three disjoint slices of the trades (as the speed
layer's successive emissions would be), they land in one Delta table, and Trino's
compiled merge + served columns (vwap included) must equal the oracle over all trades.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC
from functools import reduce

import pytest
from pyspark.sql import DataFrame, SparkSession

from batch_layer.spark_views import partials
from serving_layer.trino import query, register_table
from serving_layer.trino_views import merge_sql, served_sql
from shared.config import Settings
from shared.views import VIEWS, View
from tests.oracle import view_rows
from tests.view_cases import EDGE_TRADES

pytestmark = pytest.mark.integration

TRADES_DDL = ("exchange STRING, symbol STRING, trade_id STRING, price DECIMAL(18,8), "
              "qty DECIMAL(18,8), side STRING, ts BIGINT")


@pytest.mark.parametrize("view", list(VIEWS.values()), ids=list(VIEWS))
def test_trino_merges_partials_to_the_oracle(spark: SparkSession, stack: Settings,
                                             unique: str, view: View) -> None:
    slices = [[asdict(t) for i, t in enumerate(EDGE_TRADES) if i % 3 == k] for k in range(3)]
    parts = [partials(spark.createDataFrame(s, TRADES_DDL), view) for s in slices]
    rows: DataFrame = reduce(DataFrame.unionByName, parts)
    table = f"it_merge_{view.name}_{unique}"
    rows.write.format("delta").save(stack.table_uri("speed", table))
    register_table(stack, "speed", table)

    merged = f"({merge_sql(view, f'lake.speed.{table}')})"
    result = query(stack, served_sql(view, merged))
    names = [n for n, _ in view.merged_columns()]
    measures = [m.name for m in view.measures] + [d.name for d in view.derived]
    got = {}
    for values in result:
        row = dict(zip(names, values, strict=True))
        start = row["window_start"].astimezone(UTC)
        got[(*(row[k] for k in view.keys), start)] = {m: row[m] for m in measures}
    expected = view_rows(EDGE_TRADES, view.keys, view.window_seconds,
                         [m.name for m in view.measures], [d.name for d in view.derived])
    assert got == expected
    # The split really produced several partials for some windows.
    assert rows.count() > len(expected)


def test_vwap_is_rounded_half_up_once(stack: Settings) -> None:
    """The served vwap equals Python's exact quantize, also where rounding twice would not."""
    import random
    from decimal import Decimal

    from shared.views import VWAP
    from tests.oracle import vwap

    rng = random.Random(7)
    pairs = [
        # exact 0.12345678499999996..., Trino's scale-16 division gives ...8500000000
        (Decimal("0.3703703549999999"), Decimal("3")),
        (Decimal("0.0000000150000000"), Decimal("2")),  # exactly .5e-8: half up
        (Decimal("5"), Decimal("3")),
        (Decimal("1"), Decimal("3")),
        (Decimal("99999999999999999999.9999999800000001"), Decimal("9999999999.99999999")),
    ]
    for _ in range(300):
        volume = Decimal(rng.randint(1, 10**12)) / 10**8
        notional = Decimal(rng.randint(1, 10**22)) / 10**16
        pairs.append((notional, volume))
    values = ", ".join(f"(CAST(DECIMAL '{n:f}' AS DECIMAL(38,16)), CAST(DECIMAL '{v:f}' AS "
                       f"DECIMAL(38,8)), {i})" for i, (n, v) in enumerate(pairs))
    rows = query(stack, f"SELECT i, {VWAP.sql} FROM (VALUES {values}) AS t(notional, volume, i)")
    got = {i: value for i, value in rows}
    wrong = {i: (pairs[i], got[i], vwap(*pairs[i])) for i in got if got[i] != vwap(*pairs[i])}
    assert len(got) == len(pairs) and not wrong
