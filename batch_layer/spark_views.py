"""View declarations (shared.views) compiled for Spark: trades -> whole-window partial rows.

`partials` is a pure transform (no I/O): a DataFrame of accepted trades in, the view's
partial rows (View.partial_columns) out, one row per (keys, window). The recompute job
feeds it raw.trades for a time range and writes the result with replaceWhere.

Two compilations give the same rows, value for value and type for type:

- the **exact** one (`fast=False`) aggregates as the declaration reads: FIRST/LAST as
  MIN/MAX of the per-trade order key string (shared.views.order_key), SUMs of the
  declared DECIMAL expressions. Any trades, but slow: a string aggregation buffer makes
  Spark sort every trade (SortAggregate instead of a hash aggregation), and a product
  of two DECIMAL(18,8) is a java.math.BigDecimal per trade.
- the **fast** one (`fast=True`, what `concord batch recompute` runs) keeps every
  aggregation buffer a fixed-width number, so Spark hash-aggregates:
  * FIRST/LAST order trades by one BIGINT, `offset of ts in the window * M + code of
    the trade_id`, where the code of a trade_id of 1..D digits (D from the window
    width, 13 for a minute) preserves string order (digits padded right to D, then the
    length: a prefix sorts first). The winner's ts and trade_id are decoded from the
    smallest / largest BIGINT and its order key string is built once per group. Within
    a group of one (exchange, symbol) no two trades share (ts, trade_id) (ingest keeps
    one trade per identity), so the BIGINT order is the key string order there; views
    keyed by fewer columns are aggregated per (exchange, symbol) first and merged by
    the key strings (the same merge the serving layer applies to partial rows).
  * a SUM of a DECIMAL(18,8) input is a BIGINT sum of its unscaled value (Spark keeps
    a DECIMAL(28,8) sum buffer as bytes, a BigInteger per update); a SUM of
    `CAST(a * b AS DECIMAL(37,16))` of two positive DECIMAL(18,8) inputs is summed as
    three BIGINTs over the integer and 8-decimal fraction parts of a and b
    (a * b * 1e16 = ia*ib*1e16 + (ia*fb + fa*ib)*1e8 + fa*fb). The sums become
    DECIMALs once per group.
  Trades the fast form cannot take exactly (a trade_id that is not 1..D digits, a
  product of a non-positive input, a BIGINT that would overflow) are counted per group in
  the column `_misfits`; the caller uses the exact rows wherever it is not 0.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

from shared.views import INPUTS, KEY_COLUMNS, TS_DIGITS, Agg, Measure, View

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

MISFITS: Final = "_misfits"
# The columns whose combination is unique per trade in raw.trades (with trade_id).
_BOOK: Final = ("exchange", "symbol")
_MAX_BIGINT: Final = 2**63 - 1
# CAST(a * b AS DECIMAL(37,16)) of two DECIMAL(18,8) inputs.
_PRODUCT: Final = re.compile(r"CAST\((\w+) \* (\w+) AS DECIMAL\(37,16\)\)")


def order_key_sql(value_sql: str, ts_sql: str = "ts", trade_id_sql: str = "trade_id") -> str:
    """shared.views.order_key in Spark SQL: (ts, trade_id) order as string order."""
    escaped = (f"replace(replace({trade_id_sql}, chr(1), chr(1) || chr(2)), chr(0), "
               "chr(1) || chr(1))")
    return (f"concat(lpad(CAST({ts_sql} AS STRING), {TS_DIGITS}, '0'), {escaped}, chr(0), "
            f"CAST({value_sql} AS STRING))")


def _spark_type(sql_type: str) -> str:
    return {"VARCHAR": "STRING", "TIMESTAMP": "TIMESTAMP"}.get(sql_type, sql_type)


def _window_start(view: View) -> Column:
    from pyspark.sql import functions as F

    return F.timestamp_millis(F.col("ts") - F.pmod(F.col("ts"), F.lit(view.window_ms)))


# --- the exact compilation -----------------------------------------------------------------


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


def partials(trades: DataFrame, view: View, *, fast: bool = False) -> DataFrame:
    """One partial row per (keys, window) of `view` over `trades` (raw.trades columns).

    With `fast`, the rows carry a `_misfits` column as well: where it is not 0, the row
    is not exact and the exact compilation's row must be used instead.
    """
    if fast:
        return _fast_partials(trades, view)
    aggregates = [a for m in view.measures for a in _aggregates(m)]
    grouped = trades.groupBy(*view.keys, _window_start(view).alias("window_start")).agg(
        *aggregates)
    result: DataFrame = grouped.select(*(name for name, _ in view.partial_columns()))
    return result


# --- the fast compilation ------------------------------------------------------------------


def id_digits(window_ms: int) -> int:
    """D: the longest all-digit trade_id whose order code fits beside the ts offset."""
    digits = 1
    while window_ms * 10 ** (digits + 1) * (digits + 2) <= _MAX_BIGINT:
        digits += 1
    return digits


def order_rank_sql(window_ms: int) -> str:
    """The trade's (ts, trade_id) order within its window as a BIGINT (NULL when the
    trade_id is not 1..D digits): offset * M + padded digits * (D + 1) + length."""
    d = id_digits(window_ms)
    span = 10**d * (d + 1)
    powers = ", ".join(f"CAST({10 ** (d - n)} AS BIGINT)" for n in range(1, d + 1))
    lows = ", ".join(f"CAST({10 ** (n - 1)} AS BIGINT)" for n in range(1, d + 1))
    # All digits, the first not 0: its first byte is 1..9 (no sign, no whitespace: a
    # string comparison, no copy), and the number a CAST reads (ANSI: no decimal
    # point) has as many digits as the string has bytes (trailing whitespace, which the
    # CAST trims, would leave fewer). Cheaper than a regular expression per trade.
    # Leading zeros (and "0") are misfits.
    length = "octet_length(trade_id)"
    digits = (f"trade_id >= '1' AND trade_id < ':' AND {length} <= {d} "
              f"AND try_cast(trade_id AS BIGINT) >= element_at(array({lows}), {length})")
    return (f"CASE WHEN {digits} THEN pmod(ts, {window_ms}) * {span} "
            f"+ CAST(trade_id AS BIGINT) * element_at(array({powers}), {length}) "
            f"* {d + 1} + {length} END")


def _decoded_key_sql(rank_sql: str, value_sql: str, window_ms: int) -> str:
    """The order key string of the trade whose order BIGINT is `rank_sql` (per group)."""
    d = id_digits(window_ms)
    span = 10**d * (d + 1)
    code = f"pmod({rank_sql}, {span})"
    ts = f"(unix_millis(window_start) + div({rank_sql}, {span}))"
    trade_id = (f"substr(lpad(CAST(div({code}, {d + 1}) AS STRING), {d}, '0'), 1, "
                f"CAST(pmod({code}, {d + 1}) AS INT))")
    return order_key_sql(value_sql, ts, trade_id)


def _fraction_units(value_sql: str) -> str:
    """The 8 decimals of a DECIMAL(18,8) value as a BIGINT (exact: each step stays on
    Spark's 64-bit decimal path, and a fraction < 1e8 survives the DOUBLE round trip)."""
    return (f"CAST(rint(CAST(({value_sql}) - CAST(CAST(({value_sql}) AS BIGINT) AS "
            "DECIMAL(18,8)) AS DOUBLE) * 1e8) AS BIGINT)")


def _units(value_sql: str) -> str:
    """A DECIMAL(18,8) value as its unscaled BIGINT (|value| < 1e10, so it fits)."""
    return f"(CAST(({value_sql}) AS BIGINT) * 100000000 + {_fraction_units(value_sql)})"


def _decimal_from_units(units_sql: str) -> str:
    """DECIMAL(38,8) from a BIGINT count of 1e-8 units (per group, via its digits)."""
    return (f"CAST(concat(CASE WHEN {units_sql} < 0 THEN '-' ELSE '' END, "
            f"CAST(abs(div({units_sql}, 100000000)) AS STRING), '.', "
            f"lpad(CAST(abs({units_sql} % 100000000) AS STRING), 8, '0')) AS DECIMAL(38,8))")


def _product_parts(a: str, b: str) -> list[str]:
    """a * b * 1e16 as three BIGINT terms per trade (NULL where a term would overflow)."""
    ia, ib = f"CAST({a} AS BIGINT)", f"CAST({b} AS BIGINT)"
    fa, fb = _fraction_units(a), _fraction_units(b)
    return [f"try_multiply({ia}, {ib})",
            f"try_add(try_multiply({ia}, {fb}), try_multiply({fa}, {ib}))",
            f"{fa} * {fb}"]


def _product_inputs(m: Measure) -> tuple[str, str] | None:
    assert m.input is not None
    match = _PRODUCT.fullmatch(INPUTS[m.input].sql)
    if match is None or any(INPUTS.get(name) is None or INPUTS[name].type != "DECIMAL(18,8)"
                            for name in match.groups()):
        return None
    return match.group(1), match.group(2)


def _assembled_sum_sql(parts: list[str]) -> str:
    """DECIMAL(38,16) from the group's sums (hi, mid, lo) of the three terms, carrying
    lo and mid into whole units (all >= 0: prices and quantities are positive)."""
    hi, mid, lo = parts
    mid_carried = f"({mid} + div({lo}, 100000000))"
    return (f"CAST(concat(CAST({hi} + div({mid_carried}, 100000000) AS STRING), '.', "
            f"lpad(CAST(pmod({mid_carried}, 100000000) AS STRING), 8, '0'), "
            f"lpad(CAST(pmod({lo}, 100000000) AS STRING), 8, '0')) AS DECIMAL(38,16))")


def _fast_partials(trades: DataFrame, view: View) -> DataFrame:
    from pyspark.sql import functions as F

    book = tuple(k for k in KEY_COLUMNS if k in view.keys or k in _BOOK)
    rank_sql = order_rank_sql(view.window_ms)
    ranked = trades.withColumn("_rank", F.expr(rank_sql))
    aggregates: list[Column] = []
    finish: list[Column] = []
    misfit_rows: list[str] = []
    misfit_sums: list[str] = []
    for i, m in enumerate(view.measures):
        typed = _spark_type(m.type)
        if m.agg is Agg.COUNT:
            aggregates.append(F.count(F.lit(1)).cast("bigint").alias(m.name))
            finish.append(F.col(m.name))
            continue
        assert m.input is not None
        value = F.expr(INPUTS[m.input].sql)
        product = _product_inputs(m) if m.agg is Agg.SUM else None
        if product is not None:
            terms = _product_parts(*product)
            names = [f"_sum{i}_{j}" for j in range(3)]
            aggregates += [F.expr(f"try_sum({t})").alias(n) for t, n in zip(terms, names,
                                                                           strict=True)]
            misfit_rows += [f"({t}) IS NULL" for t in terms]
            misfit_rows += [f"{column} <= 0" for column in product]
            misfit_sums += [f"{n} IS NULL" for n in names]
            finish.append(F.expr(_assembled_sum_sql(names)).cast(typed).alias(m.name))
        elif m.agg is Agg.SUM and INPUTS[m.input].type == "DECIMAL(18,8)":
            # A DECIMAL(28,8) sum buffer is a BigInteger per update; a BIGINT is not.
            units = f"_sum{i}"
            aggregates.append(F.expr(f"try_sum({_units(INPUTS[m.input].sql)})").alias(units))
            misfit_sums.append(f"{units} IS NULL")
            finish.append(F.expr(_decimal_from_units(units)).cast(typed).alias(m.name))
        elif m.agg in (Agg.SUM, Agg.MIN, Agg.MAX):
            call = {Agg.SUM: F.sum, Agg.MIN: F.min, Agg.MAX: F.max}[m.agg]
            aggregates.append(call(value).cast(typed).alias(m.name))
            finish.append(F.col(m.name))
        else:
            pick, by = (F.min_by, F.min) if m.agg is Agg.FIRST else (F.max_by, F.max)
            assert m.key_column is not None
            aggregates += [pick(value, F.col("_rank")).cast(typed).alias(m.name),
                           by("_rank").alias(m.key_column)]
            key = _decoded_key_sql(m.key_column, m.name, view.window_ms)
            finish += [F.col(m.name), F.expr(key).alias(m.key_column)]
    if any(m.agg in (Agg.FIRST, Agg.LAST) for m in view.measures):
        misfit_rows.append("_rank IS NULL")
    aggregates.append((F.expr(f"count_if({' OR '.join(misfit_rows)})") if misfit_rows
                       else F.lit(0).cast("bigint")).alias(MISFITS))
    misfits = F.col(MISFITS)
    for condition in misfit_sums:
        misfits = F.when(F.expr(condition), misfits + 1).otherwise(misfits)
    rows = (ranked.groupBy(*book, _window_start(view).alias("window_start")).agg(*aggregates)
            .select(*book, "window_start", *finish, misfits.alias(MISFITS)))
    if book != view.keys:
        rows = _merge(rows, view)
    result: DataFrame = rows.select(*(name for name, _ in view.partial_columns()), MISFITS)
    return result


def _merge(rows: DataFrame, view: View) -> DataFrame:
    """Partial rows of finer keys merged into `view`'s keys (exact: by the key strings)."""
    from pyspark.sql import functions as F

    merged: list[Column] = []
    for m in view.measures:
        typed = _spark_type(m.type)
        if m.agg is Agg.COUNT:  # never NULL, like the exact COUNT
            merged.append(F.coalesce(F.sum(m.name), F.lit(0)).cast(typed).alias(m.name))
        elif m.agg is Agg.SUM:
            merged.append(F.sum(m.name).cast(typed).alias(m.name))
        elif m.agg in (Agg.MIN, Agg.MAX):
            merged.append((F.min if m.agg is Agg.MIN else F.max)(m.name).alias(m.name))
        else:
            assert m.key_column is not None
            pick, by = (F.min_by, F.min) if m.agg is Agg.FIRST else (F.max_by, F.max)
            merged += [pick(m.name, F.col(m.key_column)).alias(m.name),
                       by(m.key_column).alias(m.key_column)]
    merged.append(F.sum(MISFITS).cast("bigint").alias(MISFITS))
    result: DataFrame = rows.groupBy(*view.keys, "window_start").agg(*merged)
    return result
