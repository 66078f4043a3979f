"""An independent oracle in DuckDB: each view's served rows from trades, by SQL written
here from DESIGN.md's words (not compiled from the declarations under test).

Trades go in as DECIMAL(18,8) columns; sums are exact DECIMAL(38,x); open/close are the
price of the trade with the smallest/largest (ts, trade_id), trade_id compared as text.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC
from typing import Any

import duckdb
import pyarrow as pa

from shared.contract import Trade

# measure name -> DuckDB aggregate (price * qty widened first: DuckDB keeps 18 digits
# for DECIMAL(18,8) * DECIMAL(18,8) and would overflow).
NOTIONAL = "CAST(price AS DECIMAL(19,8)) * qty"
MEASURES = {
    "open": "arg_min(price, (ts, trade_id))",
    "close": "arg_max(price, (ts, trade_id))",
    "high": "max(price)",
    "low": "min(price)",
    "volume": "sum(qty)",
    "buy_volume": "sum(CASE WHEN side = 'buy' THEN qty ELSE 0 END)",
    "notional": f"sum({NOTIONAL})",
    "trade_count": "count(*)",
    "largest_qty": "max(qty)",
    "smallest_qty": "min(qty)",
}
SCHEMA = pa.schema([("exchange", pa.string()), ("symbol", pa.string()),
                    ("trade_id", pa.string()), ("price", pa.decimal128(18, 8)),
                    ("qty", pa.decimal128(18, 8)), ("side", pa.string()), ("ts", pa.int64())])


def duckdb_rows(trades: Iterable[Trade], keys: tuple[str, ...], window_seconds: int,
                measures: list[str]) -> dict[tuple[Any, ...], dict[str, Any]]:
    """(keys..., window_start) -> {measure: value} computed by DuckDB."""
    table = pa.Table.from_pylist([{f: getattr(t, f) for f in SCHEMA.names} for t in trades],
                                 schema=SCHEMA)
    width = window_seconds * 1000
    group = ", ".join(keys)
    select = ", ".join(f"{MEASURES[m]} AS {m}" for m in measures)
    con = duckdb.connect()
    try:
        con.register("trades", table)
        rows = con.execute(
            f"SELECT {group}, to_timestamp((ts - ts % {width}) / 1000) AS window_start, "
            f"{select} FROM trades GROUP BY {group}, ts - ts % {width}").fetchall()
    finally:
        con.close()
    n = len(keys)
    return {(*r[:n], r[n].astimezone(UTC)): dict(zip(measures, r[n + 1:], strict=True))
            for r in rows}
