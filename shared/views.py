"""Views, declared once: keys, window, mergeable measures. Each engine compiles them.

A view aggregates accepted trades per key and event-time window (DESIGN.md, "Views are
defined once"). Every measure is mergeable: rows of the same (key, window) computed
from disjoint sets of trades combine into the row of their union. That is what lets
the speed layer emit partial rows every second, the batch layer write whole windows,
and the serving layer merge either with the same SQL.

The stored shape of a view (both `speed.<view>` and `batch.<view>`) is its *partial*
row: keys, `window_start`, one column per measure, and for FIRST/LAST measures a sort
key column `<name>_key` that orders trades by (ts, trade_id) as plain string order
(`order_key_sql`), so that "first" is MIN(key) in every engine, and merging two
partials is MIN/MAX again. The batch layer's rows are partials of whole windows.

The compilers live with their engines: batch_layer/spark_views.py,
speed_layer/flink_views.py, serving_layer/trino_views.py. Adding a view is adding a
declaration to VIEWS.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, localcontext
from enum import StrEnum
from math import gcd
from typing import Any, Final

from shared.contract import Trade


class Agg(StrEnum):
    COUNT = "count"
    SUM = "sum"
    MIN = "min"
    MAX = "max"
    FIRST = "first"  # value of the trade with the smallest (ts, trade_id)
    LAST = "last"  # value of the trade with the largest (ts, trade_id)


@dataclass(frozen=True)
class Input:
    """A per-trade value measures aggregate: an expression over the trade's columns.

    `sql` is written in the subset of SQL that Spark, Flink and Trino read alike
    (CASE, CAST to DECIMAL, arithmetic); `type` is its exact SQL type.
    """

    name: str
    sql: str
    type: str
    value: Callable[[Trade], Decimal]  # the same expression in Python (exact)


# Trade columns (raw.trades and the speed layer's parsed stream): exchange, symbol,
# trade_id, price DECIMAL(18,8), qty DECIMAL(18,8), side, ts BIGINT (epoch ms, UTC).
INPUTS: Final = {
    i.name: i
    for i in (
        Input("price", "price", "DECIMAL(18,8)", lambda t: t.price),
        Input("qty", "qty", "DECIMAL(18,8)", lambda t: t.qty),
        Input("buy_qty", "CASE WHEN side = 'buy' THEN qty ELSE CAST(0 AS DECIMAL(18,8)) END",
              "DECIMAL(18,8)", lambda t: t.qty if t.side == "buy" else Decimal(0)),
        Input("notional", "CAST(price * qty AS DECIMAL(37,16))", "DECIMAL(37,16)",
              lambda t: t.price * t.qty),
    )
}
KEY_COLUMNS: Final = {"exchange": "VARCHAR", "symbol": "VARCHAR", "side": "VARCHAR"}


@dataclass(frozen=True)
class Measure:
    name: str
    agg: Agg
    input: str | None = None  # a key of INPUTS; None for COUNT

    @property
    def type(self) -> str:
        """Exact SQL type of the measure (partials and merged rows alike)."""
        if self.agg is Agg.COUNT:
            return "BIGINT"
        assert self.input is not None
        source = INPUTS[self.input].type
        if self.agg is Agg.SUM:
            return "DECIMAL(38,16)" if source.endswith(",16)") else "DECIMAL(38,8)"
        return source

    @property
    def key_column(self) -> str | None:
        """The (ts, trade_id) order key column of a FIRST/LAST measure."""
        return f"{self.name}_key" if self.agg in (Agg.FIRST, Agg.LAST) else None


@dataclass(frozen=True)
class Derived:
    """A serving-time column computed from merged measures (a ratio, never stored)."""

    name: str
    sql: str  # Trino SQL over the merged row's measure columns
    type: str


@dataclass(frozen=True)
class View:
    name: str
    keys: tuple[str, ...]
    window_seconds: int
    measures: tuple[Measure, ...]
    derived: tuple[Derived, ...] = ()
    doc: str = ""

    def __post_init__(self) -> None:
        for key in self.keys:
            if key not in KEY_COLUMNS:
                raise ValueError(f"view {self.name}: key {key!r} is not one of {list(KEY_COLUMNS)}")
        for m in self.measures:
            if (m.input is None) != (m.agg is Agg.COUNT):
                raise ValueError(f"view {self.name}: measure {m.name} needs an input "
                                 "unless it is a COUNT")
            if m.input is not None and m.input not in INPUTS:
                raise ValueError(f"view {self.name}: measure {m.name}: unknown input {m.input!r}")
        if self.window_seconds <= 0 or 86_400 % self.window_seconds:
            raise ValueError(f"view {self.name}: the window must divide a day")

    @property
    def window_ms(self) -> int:
        return self.window_seconds * 1000

    def partial_columns(self) -> list[tuple[str, str]]:
        """(name, SQL type) of the stored rows: keys, window_start, measures, sort keys."""
        cols = [(k, KEY_COLUMNS[k]) for k in self.keys] + [("window_start", "TIMESTAMP")]
        for m in self.measures:
            cols.append((m.name, m.type))
            if m.key_column:
                cols.append((m.key_column, "VARCHAR"))
        return cols

    def merged_columns(self) -> list[tuple[str, str]]:
        """(name, SQL type) of the served rows: keys, window_start, measures, derived."""
        cols = [(k, KEY_COLUMNS[k]) for k in self.keys] + [("window_start", "TIMESTAMP")]
        cols += [(m.name, m.type) for m in self.measures]
        cols += [(d.name, d.type) for d in self.derived]
        return cols


# The order key of a trade: ts as 15 digits, then the trade_id escaped so that no
# encoded id is a prefix of another (\0 -> \1\1, \1 -> \1\2, then a \0 terminator),
# then the value. Plain string comparison of two keys (UTF-8 bytes = code points, the
# same in Spark, Flink, Trino and Python) is the (ts, trade_id) order: ts fixed width,
# the escaped id decides before the value is reached. The value, after the last \0, is
# read back with CAST. ts <= 253402300799999 (the contract) has 15 digits.
TS_DIGITS: Final = 15


def order_key(ts: int, trade_id: str, value: str) -> str:
    """The Python form of the order key (tests and oracles)."""
    escaped = trade_id.replace("\1", "\1\2").replace("\0", "\1\1")
    return f"{ts:0{TS_DIGITS}d}{escaped}\0{value}"


def evaluate(view: View, trades: Iterable[Trade]) -> dict[tuple[Any, ...], dict[str, Any]]:
    """The view's measures over `trades` in Python, exact: (keys..., window_start) -> row.

    For checks inside the platform (`concord reconcile` explaining a difference); the
    engines compute views from their compiled SQL, never from this.
    """
    groups: dict[tuple[Any, ...], list[Trade]] = {}
    for t in trades:
        start = datetime.fromtimestamp(t.ts // view.window_ms * view.window_seconds, tz=UTC)
        groups.setdefault((*(getattr(t, k) for k in view.keys), start), []).append(t)
    out = {}
    for key, group in groups.items():
        with localcontext() as exact:
            exact.prec = 80  # every product and sum of DECIMAL(18,8) values is exact
            out[key] = _measures(view, group)
    return out


def _measures(view: View, group: list[Trade]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for m in view.measures:
        if m.agg is Agg.COUNT:
            row[m.name] = len(group)
            continue
        assert m.input is not None
        value = INPUTS[m.input].value
        if m.agg is Agg.SUM:
            row[m.name] = sum((value(t) for t in group), Decimal(0))
        elif m.agg in (Agg.MIN, Agg.MAX):
            row[m.name] = (min if m.agg is Agg.MIN else max)(value(t) for t in group)
        else:
            pick = min if m.agg is Agg.FIRST else max
            row[m.name] = value(pick(group, key=lambda t: (t.ts, t.trade_id)))
    return row


def grain(views: Iterable[View]) -> View:
    """The finest grain every one of `views` is a merge of: all their keys, the greatest
    common divisor of their windows, and one measure per distinct (aggregate, input)
    they use, named `<agg>_<input>` (`count` for COUNT).

    Partial rows are mergeable, so a view's partial rows are the grain's partial rows
    regrouped by the view's keys and window (`regroup`): the speed layer aggregates
    trades once, at this grain, instead of once per view.
    """
    views = list(views)
    keys = tuple(k for k in KEY_COLUMNS if any(k in v.keys for v in views))
    window = 0
    for v in views:
        window = gcd(window, v.window_seconds)
    measures: dict[str, Measure] = {}
    for v in views:
        for m in v.measures:
            name = grain_measure(m)
            measures.setdefault(name, Measure(name, m.agg, m.input))
    return View("grain", keys, window, tuple(measures.values()),
                doc="the finest grain of " + ", ".join(v.name for v in views))


def grain_measure(m: Measure) -> str:
    """The name of the grain's measure that `m` is a merge of."""
    return "count" if m.agg is Agg.COUNT else f"{m.agg.value}_{m.input}"


def regroup(view: View, rows: Iterable[Mapping[str, Any]], by: tuple[str, ...] = ()
            ) -> list[dict[str, Any]]:
    """Partial rows of a `grain` of views including `view` merged into partial rows of
    `view`, exactly: one per view key, view window and `by` columns (kept as
    they are, e.g. the speed layer's `emitted_at`). COUNT and SUM add, MIN and MAX stay,
    FIRST and LAST take the value of the smallest or largest order key."""
    with localcontext() as exact:
        exact.prec = 80  # sums of DECIMAL(38,16) partials stay exact
        return _regroup(view, rows, by)


def _regroup(view: View, rows: Iterable[Mapping[str, Any]], by: tuple[str, ...]
             ) -> list[dict[str, Any]]:
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    width = view.window_seconds
    sources = [(m, grain_measure(m)) for m in view.measures]
    for r in rows:
        start = r["window_start"]
        window = datetime.fromtimestamp(int(start.timestamp()) // width * width,
                                        tz=start.tzinfo or UTC)
        group = (*(r[k] for k in view.keys), window, *(r[c] for c in by))
        merged = out.get(group)
        if merged is None:
            merged = {**{k: r[k] for k in view.keys}, "window_start": window,
                      **{c: r[c] for c in by}}
            for m, source in sources:
                merged[m.name] = r[source]
                if m.key_column:
                    merged[m.key_column] = r[f"{source}_key"]
            out[group] = merged
            continue
        for m, source in sources:
            value = r[source]
            if m.agg in (Agg.COUNT, Agg.SUM):
                merged[m.name] += value
            elif m.agg is Agg.MIN:
                merged[m.name] = min(merged[m.name], value)
            elif m.agg is Agg.MAX:
                merged[m.name] = max(merged[m.name], value)
            else:
                key = r[f"{source}_key"]
                assert m.key_column is not None
                if (key < merged[m.key_column]) == (m.agg is Agg.FIRST):
                    merged[m.name], merged[m.key_column] = value, key
    return list(out.values())


# notional / volume rounded half up to 8 decimals, exactly. Trino divides decimals at
# scale 16 (rounding), so rounding that again to 8 could round twice. Instead: d = the
# quotient truncated to 8 decimals (rounding at scale 16 never crosses a multiple of
# 1e-8 downward, and crossing upward lands on the right answer), then add 1e-8 when
# notional >= (d + 0.000000005) * volume, an exact decimal comparison.
_DOWN = "CAST(truncate(notional / volume, 8) AS DECIMAL(38,8))"
VWAP: Final = Derived(
    "vwap",
    f"CASE WHEN volume > 0 THEN {_DOWN} + CASE WHEN notional >= "
    f"(CAST({_DOWN} AS DECIMAL(38,9)) + DECIMAL '0.000000005') * volume "
    "THEN DECIMAL '0.00000001' ELSE DECIMAL '0' END END",
    "DECIMAL(38,8)",
)

# Open, high, low, close and volume: the measures every bar view starts with.
OHLCV: Final = (
    Measure("open", Agg.FIRST, "price"),
    Measure("high", Agg.MAX, "price"),
    Measure("low", Agg.MIN, "price"),
    Measure("close", Agg.LAST, "price"),
    Measure("volume", Agg.SUM, "qty"),
)

BARS_1M: Final = View(
    name="bars_1m",
    keys=("exchange", "symbol"),
    window_seconds=60,
    measures=(
        *OHLCV,
        Measure("buy_volume", Agg.SUM, "buy_qty"),
        Measure("notional", Agg.SUM, "notional"),
        Measure("trade_count", Agg.COUNT),
    ),
    derived=(VWAP,),
    doc="1-minute OHLCV bars per exchange and symbol (DESIGN.md).",
)

SYMBOL_BARS_1M: Final = View(
    name="symbol_bars_1m",
    keys=("symbol",),
    window_seconds=60,
    measures=(
        *OHLCV,
        Measure("notional", Agg.SUM, "notional"),
        Measure("trade_count", Agg.COUNT),
    ),
    derived=(VWAP,),
    doc="1-minute bars per symbol across all exchanges (a consolidated tape).",
)

FLOW_5M: Final = View(
    name="flow_5m",
    keys=("exchange", "symbol", "side"),
    window_seconds=300,
    measures=(
        Measure("volume", Agg.SUM, "qty"),
        Measure("notional", Agg.SUM, "notional"),
        Measure("largest_qty", Agg.MAX, "qty"),
        Measure("smallest_qty", Agg.MIN, "qty"),
        Measure("trade_count", Agg.COUNT),
    ),
    derived=(VWAP,),
    doc="5-minute taker flow per exchange, symbol and side: who is aggressing, how hard.",
)

VIEWS: Final = {v.name: v for v in (BARS_1M, SYMBOL_BARS_1M, FLOW_5M)}
