"""View declarations (shared.views) compiled for Flink SQL: trades -> partial rows.

Flink SQL has no MIN_BY/ARG_MIN, so FIRST/LAST use the declaration's order key
(shared.views.order_key): MIN/MAX over `ts(15 digits) || escaped trade_id || \\0 ||
value` is the (ts, trade_id) order, and the value is read back from behind the first
\\0. One string aggregate per measure, no Python in the hot path.

`partials_sql` is the aggregation for any grouping: the speed job adds its
processing-time window to `extra_group_by`, so each slice (CONCORD_SPEED_EMIT_MS) it
emits one partial row per (keys, event-time window) it saw trades for.
"""

from __future__ import annotations

from shared.views import INPUTS, TS_DIGITS, Agg, Measure, View

_ESCAPED_ID = "REPLACE(REPLACE(trade_id, CHR(1), CHR(1) || CHR(2)), CHR(0), CHR(1) || CHR(1))"


def order_key_sql(value_sql: str) -> str:
    """shared.views.order_key in Flink SQL."""
    return (f"LPAD(CAST(ts AS STRING), {TS_DIGITS}, '0') || {_ESCAPED_ID} || CHR(0) || "
            f"CAST({value_sql} AS STRING)")


def flink_type(sql_type: str) -> str:
    """A shared.views SQL type in Flink's spelling."""
    return {"VARCHAR": "STRING", "TIMESTAMP": "TIMESTAMP(3)"}.get(sql_type, sql_type)


def _value_of_key(key_sql: str, sql_type: str) -> str:
    return f"CAST(SUBSTR({key_sql}, POSITION(CHR(0) IN {key_sql}) + 1) AS {sql_type})"


def _aggregates(m: Measure) -> list[str]:
    if m.agg is Agg.COUNT:
        return [f"CAST(COUNT(*) AS BIGINT) AS `{m.name}`"]
    assert m.input is not None
    value = INPUTS[m.input].sql
    typed = flink_type(m.type)
    if m.agg in (Agg.SUM, Agg.MIN, Agg.MAX):
        return [f"CAST({m.agg.value.upper()}({value}) AS {typed}) AS `{m.name}`"]
    key = f"{'MIN' if m.agg is Agg.FIRST else 'MAX'}({order_key_sql(value)})"
    return [f"{_value_of_key(key, typed)} AS `{m.name}`", f"{key} AS `{m.key_column}`"]


def window_start_sql(view: View) -> str:
    """The event-time window of a trade as TIMESTAMP(3) (the session time zone is UTC)."""
    return (f"CAST(TO_TIMESTAMP_LTZ(ts - MOD(ts, CAST({view.window_ms} AS BIGINT)), 3) "
            "AS TIMESTAMP(3))")


def partials_sql(view: View, source: str, *, extra_group_by: tuple[str, ...] = (),
                 extra_select: tuple[str, ...] = ()) -> str:
    """SELECT of the view's partial rows (View.partial_columns order) from `source`.

    `source` is a table or subquery with the trade columns; `extra_group_by` adds
    grouping terms (the speed job's processing-time window) and `extra_select`
    leading output columns.
    """
    keys = [f"`{k}`" for k in view.keys]
    aggregates = [a for m in view.measures for a in _aggregates(m)]
    select = [*extra_select, *keys, f"{window_start_sql(view)} AS window_start", *aggregates]
    group_by = [*extra_group_by, *keys, window_start_sql(view)]
    return (f"SELECT {', '.join(select)}\nFROM {source}\nGROUP BY {', '.join(group_by)}")
