"""Plain-Python oracles, written from DESIGN.md's words, never from the code under test.

`view_rows` computes a view's served rows from trades with `decimal` and Python
ordering only: open/close = price of the trade with the smallest/largest
(ts, trade_id) (trade_id compared as a string), sums exact, vwap rounded half up.
Each measure is looked up by its *name* in MEASURES, so a declaration that
computes a measure the wrong way disagrees with the oracle.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from producers.market import Message
from shared.contract import Trade

Row = dict[str, Any]
EIGHT = Decimal("0.00000001")


def _first(ts: list[Trade]) -> Decimal:
    return min(ts, key=lambda t: (t.ts, t.trade_id)).price


def _last(ts: list[Trade]) -> Decimal:
    return max(ts, key=lambda t: (t.ts, t.trade_id)).price


MEASURES: dict[str, Callable[[list[Trade]], Any]] = {
    "open": _first,
    "close": _last,
    "high": lambda ts: max(t.price for t in ts),
    "low": lambda ts: min(t.price for t in ts),
    "volume": lambda ts: sum((t.qty for t in ts), Decimal(0)),
    "buy_volume": lambda ts: sum((t.qty for t in ts if t.side == "buy"), Decimal(0)),
    "notional": lambda ts: sum((t.price * t.qty for t in ts), Decimal(0)),
    "trade_count": len,
    "largest_qty": lambda ts: max(t.qty for t in ts),
    "smallest_qty": lambda ts: min(t.qty for t in ts),
}


def vwap(notional: Decimal, volume: Decimal) -> Decimal:
    return (notional / volume).quantize(EIGHT, rounding=ROUND_HALF_UP) if volume else Decimal(0)


def window_start(ts_ms: int, window_seconds: int) -> datetime:
    width = window_seconds * 1000
    return datetime.fromtimestamp((ts_ms - ts_ms % width) / 1000, tz=UTC)


def view_rows(trades: Iterable[Trade], keys: tuple[str, ...], window_seconds: int,
              measures: Iterable[str], derived: Iterable[str] = ()) -> dict[tuple[Any, ...], Row]:
    """{(keys..., window_start): {measure: value}} over the trades given (deduped already)."""
    from decimal import getcontext

    getcontext().prec = 80  # exact for every sum and product here
    groups: dict[tuple[Any, ...], list[Trade]] = defaultdict(list)
    for t in trades:
        groups[(*(getattr(t, k) for k in keys), window_start(t.ts, window_seconds))].append(t)
    out = {}
    for group, members in groups.items():
        row = {name: MEASURES[name](members) for name in measures}
        if "vwap" in derived:
            row["vwap"] = vwap(MEASURES["notional"](members), MEASURES["volume"](members))
        out[group] = row
    return out


def accepted(messages: Iterable[Message]) -> list[Trade]:
    """The trades the layers must count: malformed messages out, the first occurrence of
    each (exchange, symbol, trade_id) in Kafka order wins (the generator's own labels)."""
    seen: dict[tuple[str, str, str], Trade] = {}
    for m in messages:
        if m.trade is not None:
            seen.setdefault(m.trade.identity, m.trade)
    return list(seen.values())
