"""View declarations (shared.views) compiled for Trino: merging partial rows, serving.

Partial rows (speed partials every ~1 s, batch rows of whole windows) merge with the
monoid of each measure: counts and sums add, MIN/MAX stay MIN/MAX, FIRST/LAST take
the value of the row whose order key is smallest/largest (`min_by`). Merging is closed
(partials in, partials out), so it can be applied to any union of partial rows.
"""

from __future__ import annotations

from collections.abc import Callable

from shared.bookkeeping import current_boundary_sql
from shared.views import Agg, Measure, View


def _merge(m: Measure, over: Callable[[str], str] = lambda agg: agg) -> list[str]:
    """The merge of one measure's partial rows; `over` wraps each aggregate (to restrict
    which rows of a group it reads, see serving_view_sql)."""
    name = f'"{m.name}"'
    if m.agg in (Agg.COUNT, Agg.SUM):
        return [f"CAST({over(f'sum({name})')} AS {m.type}) AS {name}"]
    if m.agg in (Agg.MIN, Agg.MAX):
        return [f"{over(f'{m.agg.value}({name})')} AS {name}"]
    key = f'"{m.key_column}"'
    pick, by = ("min_by", "min") if m.agg is Agg.FIRST else ("max_by", "max")
    return [f"{over(f'{pick}({name}, {key})')} AS {name}", f"{over(f'{by}({key})')} AS {key}"]


def merge_sql(view: View, source: str) -> str:
    """SELECT merging the partial rows of `source` into one partial row per key and window."""
    keys = [f'"{k}"' for k in view.keys]
    merged = [expr for m in view.measures for expr in _merge(m)]
    group = [*keys, '"window_start"']
    return (f"SELECT {', '.join([*group, *merged])}\nFROM {source}\n"
            f"GROUP BY {', '.join(group)}")


def served_sql(view: View, source: str) -> str:
    """SELECT of the served columns (View.merged_columns) from merged partial rows."""
    columns = [f'"{k}"' for k in view.keys] + ['"window_start"']
    columns += [f'"{m.name}"' for m in view.measures]
    columns += [f'{d.sql} AS "{d.name}"' for d in view.derived]
    return f"SELECT {', '.join(columns)}\nFROM {source}"


def boundary_sql(view: View, catalog: str = "lake") -> str:
    """The view's current boundary (epoch when none was published yet)."""
    return current_boundary_sql(view.name, catalog)


def _prefer_batch(agg: str) -> str:
    """`agg` over a group's batch rows when it has any, else over all of it (then only
    speed rows): a group holds batch rows, speed rows, or both below the boundary."""
    return f"CASE WHEN bool_or(from_batch) THEN {agg} FILTER (WHERE from_batch) ELSE {agg} END"


def serving_view_sql(view: View, catalog: str = "lake") -> str:
    """`serving.<view>`: batch rows below the boundary + merged speed partials at/above it.

    One scan of each table and one aggregation: batch rows (below the boundary) and all
    speed rows are grouped by key and window; a group with a batch row is served from
    its batch rows, any other from its merged speed rows. At or above the boundary that
    is the speed layer. Below it, a (key, window) the batch table does not hold is
    served from the speed rows: the batch table only ever holds complete windows below
    its boundary (batch_layer.run), so a query that pairs a new boundary with the batch
    snapshot just before it finds the windows in between in the speed table instead of
    losing them; the same holds for trades the speed layer has and the batch layer has
    not ingested yet. No (key, window) is ever counted from both sides.
    """
    columns = ", ".join(f'"{n}"' for n, _ in view.partial_columns())
    boundary = boundary_sql(view, catalog)
    union = (f"(SELECT {columns}, true AS from_batch FROM {catalog}.batch.{view.name} "
             f"WHERE window_start < {boundary}\n"
             f" UNION ALL\n"
             f" SELECT {columns}, false AS from_batch FROM {catalog}.speed.{view.name})")
    keys = [f'"{k}"' for k in view.keys]
    merged = [expr for m in view.measures for expr in _merge(m, _prefer_batch)]
    group = [*keys, '"window_start"']
    rows = (f"(SELECT {', '.join([*group, *merged])}\nFROM {union}\n"
            f"GROUP BY {', '.join(group)})")
    return served_sql(view, rows)


def rollup_sql(source: str, period: str) -> str:
    """Bars of a longer period rolled up from merged 1-minute bars (`source`).

    open/close are the first/last minute's open/close: the first trade of the period
    is the first trade of its first non-empty minute. `period` is '5' MINUTE or
    '1' HOUR.
    """
    amount, unit = period.split()
    if unit == "HOUR":
        start = "date_trunc('hour', window_start)"
    else:
        start = (f"date_trunc('hour', window_start) + "
                 f"(minute(window_start) / {amount}) * INTERVAL '{amount}' MINUTE")
    from shared.views import VWAP

    return (
        f"SELECT exchange, symbol, window_start, open, high, low, close, volume, buy_volume, "
        f"notional, trade_count, {VWAP.sql} AS vwap FROM ("
        f"SELECT exchange, symbol, {start} AS window_start, "
        "min_by(open, window_start) AS open, max(high) AS high, min(low) AS low, "
        "max_by(close, window_start) AS close, CAST(sum(volume) AS DECIMAL(38,8)) AS volume, "
        "CAST(sum(buy_volume) AS DECIMAL(38,8)) AS buy_volume, "
        "CAST(sum(notional) AS DECIMAL(38,16)) AS notional, "
        f"CAST(sum(trade_count) AS BIGINT) AS trade_count FROM {source} "
        f"GROUP BY exchange, symbol, {start})"
    )


def spread_sql(source: str) -> str:
    """Per symbol and minute, the spread of closes across exchanges (merged bars_1m)."""
    return (
        "SELECT symbol, window_start, max(close) - min(close) AS spread, "
        "max(close) AS high_close, max_by(exchange, close) AS high_exchange, "
        "min(close) AS low_close, min_by(exchange, close) AS low_exchange, "
        f"count(*) AS exchanges FROM {source} GROUP BY symbol, window_start"
    )


def ticker_sql(view: View, catalog: str = "lake") -> str:
    """The latest trade per exchange and symbol, by (ts, trade_id), from the close keys
    of both layers' partial rows (the key starts with ts as 15 digits)."""
    assert view.keys == ("exchange", "symbol") and any(m.name == "close" for m in view.measures)
    columns = "exchange, symbol, close, close_key"
    rows = (f"(SELECT {columns} FROM {catalog}.batch.{view.name} "
            f"UNION ALL SELECT {columns} FROM {catalog}.speed.{view.name})")
    return (
        "SELECT exchange, symbol, max_by(close, close_key) AS price, "
        "from_unixtime_nanos(CAST(substr(max(close_key), 1, 15) AS BIGINT) * 1000000) AS ts "
        f"FROM {rows} GROUP BY exchange, symbol"
    )


def boundaries_sql(catalog: str = "lake") -> str:
    """`serving.boundaries`: each view's current boundary and when it was published, for
    readers of the serving schema (the dashboard's desk role cannot read lake.meta)."""
    return (f"SELECT view_name, max_by(boundary, run_id) AS boundary, "
            f"max_by(published_at, run_id) AS published_at "
            f"FROM {catalog}.meta.boundaries GROUP BY view_name")
