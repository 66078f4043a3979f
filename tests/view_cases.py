"""Small trade sets that exercise every rule of the view measures (shared by engine tests)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from shared.contract import Trade
from shared.views import Agg, View, evaluate, order_key

T0 = 1_763_800_020_000  # 20 s into a minute
MINUTE = 60_000


def trade(trade_id: str, price: str, qty: str, side: str = "buy", ts: int = T0,
          exchange: str = "binance", symbol: str = "BTC-USDT") -> Trade:
    return Trade(exchange, symbol, trade_id, Decimal(price), Decimal(qty), side, ts)


EDGE_TRADES: list[Trade] = [
    # Ties on ts: "10" < "9" as strings, so 10 is the first and 9 the last.
    trade("9", "100.5", "1", ts=T0),
    trade("10", "101", "2", "sell", ts=T0),
    # A prefix: "1" < "10" < "100".
    trade("100", "99", "0.5", ts=T0),
    trade("1", "98", "0.25", "sell", ts=T0),
    # Control characters in ids (the contract allows any 1-64 chars).
    trade("1\x00", "97", "0.00000001", ts=T0),
    trade("1\x01", "96", "3", "sell", ts=T0),
    # Window edges: the last ms of the minute and the first of the next.
    trade("a", "105", "1", ts=T0 - 20_000 + MINUTE - 1),
    trade("b", "106", "1", "sell", ts=T0 - 20_000 + MINUTE),
    # Extremes of DECIMAL(18,8).
    trade("big", "9999999999.99999999", "9999999999.99999999", ts=T0 + 5 * MINUTE),
    trade("tiny", "0.00000001", "0.00000001", "sell", ts=T0 + 5 * MINUTE + 1),
    # Other exchanges and symbols, same minute.
    trade("c1", "64000.1", "0.1", exchange="coinbase", ts=T0 + 1),
    trade("c2", "64000.2", "0.3", "sell", exchange="coinbase", ts=T0 + 2),
    trade("e1", "3100", "1.5", symbol="ETH-USDT", ts=T0 + 3),
    # VWAP rounding: 1/3 and 2/3 of a unit.
    trade("v1", "1", "1", symbol="XRP-USDT", ts=T0),
    trade("v2", "2", "2", symbol="XRP-USDT", ts=T0),
]


def grain_partials(base: View, trades: list[Trade], slices: int) -> list[dict[str, Any]]:
    """Partial rows of `base` over `trades` cut into `slices` (as seconds of a speed job)."""
    rows = []
    for i in range(slices):
        part = trades[i::slices]
        for key, measures in evaluate(base, part).items():
            row = {**dict(zip(base.keys, key[:-1], strict=True)), "window_start": key[-1],
                   **measures}
            for m in base.measures:
                if m.agg in (Agg.FIRST, Agg.LAST):
                    pick = min if m.agg is Agg.FIRST else max
                    t = pick((t for t in part if (*[getattr(t, k) for k in base.keys],
                             datetime.fromtimestamp(t.ts // 1000 // base.window_seconds *
                                                    base.window_seconds, tz=UTC)) == key),
                             key=lambda t: (t.ts, t.trade_id))
                    row[m.key_column or ""] = order_key(t.ts, t.trade_id, f"{t.price:.8f}")
            row["emitted_at"] = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=i % 2)
            rows.append(row)
    return rows
