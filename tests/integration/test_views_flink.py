"""Every view declaration compiled for Flink SQL, checked against the plain-Python oracle."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import pytest

from infra.engines import flink_table_env
from shared.config import Settings
from shared.views import VIEWS, View
from speed_layer.flink_views import partials_sql
from tests.oracle import view_rows
from tests.view_cases import EDGE_TRADES

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def flink_rows(stack: Settings) -> dict[str, list[dict[str, Any]]]:
    """Each view's partial rows computed by Flink over EDGE_TRADES (one batch job each)."""
    from pyflink.table import DataTypes

    t_env = flink_table_env(stack, streaming=False)
    schema = DataTypes.ROW([
        DataTypes.FIELD("exchange", DataTypes.STRING()),
        DataTypes.FIELD("symbol", DataTypes.STRING()),
        DataTypes.FIELD("trade_id", DataTypes.STRING()),
        DataTypes.FIELD("price", DataTypes.DECIMAL(18, 8)),
        DataTypes.FIELD("qty", DataTypes.DECIMAL(18, 8)),
        DataTypes.FIELD("side", DataTypes.STRING()),
        DataTypes.FIELD("ts", DataTypes.BIGINT()),
    ])
    rows = [(t.exchange, t.symbol, t.trade_id, t.price, t.qty, t.side, t.ts) for t in EDGE_TRADES]
    t_env.create_temporary_view("trades", t_env.from_elements(rows, schema))
    out = {}
    for name, view in VIEWS.items():
        table = t_env.sql_query(partials_sql(view, "trades"))
        names = table.get_schema().get_field_names()
        with table.execute().collect() as results:
            out[name] = [dict(zip(names, list(r), strict=True)) for r in results]
    return out


@pytest.mark.parametrize("view", list(VIEWS.values()), ids=list(VIEWS))
def test_flink_partials_equal_the_oracle(flink_rows: dict[str, list[dict[str, Any]]],
                                         view: View) -> None:
    rows = flink_rows[view.name]
    measures = [m.name for m in view.measures]
    got = {(*(r[k] for k in view.keys), r["window_start"].replace(tzinfo=UTC)):
           {m: r[m] for m in measures} for r in rows}
    assert got == view_rows(EDGE_TRADES, view.keys, view.window_seconds, measures)
    assert list(rows[0]) == [n for n, _ in view.partial_columns()]
