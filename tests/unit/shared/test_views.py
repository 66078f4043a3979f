from __future__ import annotations

import itertools
import random

import pytest

from producers.market import Market, MarketConfig
from shared.views import BARS_1M, VIEWS, Agg, Measure, View, evaluate, order_key
from tests.duckdb_oracle import duckdb_rows
from tests.oracle import view_rows
from tests.view_cases import EDGE_TRADES


def test_order_key_sorts_as_ts_then_trade_id() -> None:
    rng = random.Random(1)
    alphabet = ["\x00", "\x01", "\x02", "0", "1", "9", "a", "é", "\U0001f600"]
    trades = [(rng.randint(0, 3), "".join(rng.choices(alphabet, k=rng.randint(1, 4))),
               f"{rng.randint(1, 10**9)}.{rng.randint(0, 10**8 - 1):08d}")
              for _ in range(3000)]
    unique = {(ts, tid): value for ts, tid, value in trades}
    by_key = sorted(unique, key=lambda k: order_key(k[0], k[1], unique[k]))
    assert by_key == sorted(unique)


def test_order_key_value_is_behind_the_first_nul() -> None:
    key = order_key(1_763_800_000_123, "a\x00\x01b", "64250.12000000")
    assert key[key.index("\x00") + 1:] == "64250.12000000"
    assert key.startswith("001763800000123")


def test_bars_1m_columns_are_the_designs() -> None:
    assert [n for n, _ in BARS_1M.merged_columns()] == [
        "exchange", "symbol", "window_start", "open", "high", "low", "close", "volume",
        "buy_volume", "notional", "trade_count", "vwap"]
    types = dict(BARS_1M.merged_columns())
    assert types["open"] == types["high"] == "DECIMAL(18,8)"
    assert types["volume"] == "DECIMAL(38,8)" and types["notional"] == "DECIMAL(38,16)"
    assert types["trade_count"] == "BIGINT"
    assert ("open_key", "VARCHAR") in BARS_1M.partial_columns()


def test_every_view_has_distinct_column_names() -> None:
    for view in VIEWS.values():
        names = [n for n, _ in view.partial_columns()]
        assert len(names) == len(set(names)), view.name


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"keys": ("venue",)}, "key 'venue'"),
    ({"window_seconds": 7}, "divide a day"),
    ({"measures": (Measure("n", Agg.SUM),)}, "needs an input"),
    ({"measures": (Measure("n", Agg.MAX, "spread"),)}, "unknown input"),
])
def test_bad_declarations_are_refused(kwargs: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"name": "v", "keys": ("symbol",), "window_seconds": 60,
                               "measures": (Measure("n", Agg.COUNT),)}
    with pytest.raises(ValueError, match=message):
        View(**{**base, **kwargs})  # type: ignore[arg-type]


def test_python_evaluation_equals_the_oracle() -> None:
    trades = [m.trade for m in itertools.islice(Market(MarketConfig(seed=4)).messages(), 3000)
              if m.trade is not None]
    for view in VIEWS.values():
        names = [m.name for m in view.measures]
        assert evaluate(view, [*EDGE_TRADES, *trades]) == view_rows(
            [*EDGE_TRADES, *trades], view.keys, view.window_seconds, names), view.name


def test_the_duckdb_oracle_agrees_with_the_plain_python_one() -> None:
    trades = [m.trade for m in itertools.islice(Market(MarketConfig(seed=6)).messages(), 2000)
              if m.trade is not None]
    for view in VIEWS.values():
        names = [m.name for m in view.measures]
        assert duckdb_rows([*EDGE_TRADES, *trades], view.keys, view.window_seconds,
                           names) == view_rows([*EDGE_TRADES, *trades], view.keys,
                                               view.window_seconds, names), view.name
