"""shared.views.grain and regroup: every view is a merge of the grain's partial rows."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import Decimal

from producers.market import Market, MarketConfig
from shared.views import BARS_1M, FLOW_5M, VIEWS, View, grain, regroup
from tests.oracle import view_rows
from tests.view_cases import EDGE_TRADES, grain_partials


def test_the_grain_of_the_views() -> None:
    base = grain(VIEWS.values())
    assert base.keys == ("exchange", "symbol", "side") and base.window_seconds == 60
    names = [m.name for m in base.measures]
    assert len(names) == len(set(names))
    assert {"count", "first_price", "last_price", "sum_qty", "sum_notional", "max_qty"} \
        <= set(names)
    assert grain([BARS_1M]).keys == ("exchange", "symbol")
    assert grain([FLOW_5M]).window_seconds == 300


def test_regrouped_grain_rows_merge_to_each_view() -> None:
    trades = [*EDGE_TRADES,
              *(m.trade for m in itertools.islice(Market(MarketConfig(seed=5)).messages(), 3000)
                if m.trade)]
    base = grain(VIEWS.values())
    rows = grain_partials(base, trades, slices=4)
    for view in VIEWS.values():
        # Merged over all seconds: the view's rows over all the trades.
        merged = regroup(view, rows)
        measures = [m.name for m in view.measures]
        got = {(*(r[k] for k in view.keys), r["window_start"]): {m: r[m] for m in measures}
               for r in merged}
        assert got == view_rows(trades, view.keys, view.window_seconds, measures), view.name
        # Kept apart by second: one row per view key, window and second.
        partials = regroup(view, rows, by=("emitted_at",))
        groups = {(*(r[k] for k in view.keys),
                   int(r["window_start"].timestamp()) // view.window_seconds, r["emitted_at"])
                  for r in rows}
        assert len(partials) == len(groups) < len(rows)
        assert all(set(p) == {n for n, _ in view.partial_columns()} | {"emitted_at"}
                   for p in partials)


def test_sums_stay_exact_beyond_28_digits() -> None:
    big = Decimal("9999999999.99999999") * Decimal("9999999999.99999999")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [{"exchange": "x", "symbol": "A-B", "side": "buy", "window_start": start,
             "sum_notional": big, "count": 1} for _ in range(3)]
    view = View("n", ("exchange",), 60, (FLOW_5M.measures[1],))
    assert regroup(view, rows)[0]["notional"] == 3 * big
