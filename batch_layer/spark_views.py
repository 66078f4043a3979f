"""View declarations (shared.views) compiled for Spark: trades -> whole-window partial rows.

`partials` is a pure transform (no I/O): a DataFrame of accepted trades in, the view's
partial rows (View.partial_columns) out, one row per (keys, window). The recompute job
feeds it raw.trades for a time range and writes the result with replaceWhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.views import INPUTS, TS_DIGITS, Agg, Measure, View

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame


def order_key_sql(value_sql: str) -> str:
    """shared.views.order_key in Spark SQL: (ts, trade_id) order as string order."""
    escaped = "replace(replace(trade_id, chr(1), chr(1) || chr(2)), chr(0), chr(1) || chr(1))"
    return (f"concat(lpad(CAST(ts AS STRING), {TS_DIGITS}, '0'), {escaped}, chr(0), "
            f"CAST({value_sql} AS STRING))")


def _spark_type(sql_type: str) -> str:
    return {"VARCHAR": "STRING", "TIMESTAMP": "TIMESTAMP"}.get(sql_type, sql_type)


def _aggregates(m: Measure) -> list[Column]:
    from pyspark.sql import functions as F

    if m.agg is Agg.COUNT:
        return [F.count(F.lit(1)).cast("bigint").alias(m.name)]
    assert m.input is not None
    value = F.expr(INPUTS[m.input].sql)
    typed = _spark_type(m.type)
    if m.agg is Agg.SUM:
        return [F.sum(value).cast(typed).alias(m.name)]
    if m.agg is Agg.MIN:
        return [F.min(value).cast(typed).alias(m.name)]
    if m.agg is Agg.MAX:
        return [F.max(value).cast(typed).alias(m.name)]
    key = F.expr(order_key_sql(INPUTS[m.input].sql))
    pick, by = (F.min_by, F.min) if m.agg is Agg.FIRST else (F.max_by, F.max)
    assert m.key_column is not None
    return [pick(value, key).cast(typed).alias(m.name), by(key).alias(m.key_column)]


def partials(trades: DataFrame, view: View) -> DataFrame:
    """One partial row per (keys, window) of `view` over `trades` (raw.trades columns)."""
    from pyspark.sql import functions as F

    window_start = F.timestamp_millis(F.col("ts") - F.pmod(F.col("ts"), F.lit(view.window_ms)))
    aggregates = [a for m in view.measures for a in _aggregates(m)]
    grouped = trades.groupBy(*view.keys, window_start.alias("window_start")).agg(*aggregates)
    result: DataFrame = grouped.select(*(name for name, _ in view.partial_columns()))
    return result
