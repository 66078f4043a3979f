"""Batch recompute throughput: lake.raw.trades -> batch.bars_1m, Spark against DuckDB.

Builds a raw.trades Delta table of N generated trades (no Kafka: vectorised numpy
generation, written with deltalake in the layout `concord batch ingest` writes: same
columns and types, partitioned by trade_date, one append commit per million trades
like one ingest run). Then, in the same run, over the same Parquet files:

1. Spark: `Recompute.run(BARS_1M, ...)` over the whole range (what `concord batch
   recompute` runs: one replaceWhere commit per day into batch.bars_1m), once cold
   (first job of a fresh session) and once warm; trades/s = N / seconds.
2. DuckDB: the same bars (compiled from the same view declaration: open/close by the
   (ts, trade_id) order with trade_id as a string, exact DECIMAL sums) from the active
   Parquet files of raw.trades, into an Arrow table in memory, cold and warm.
3. Untimed: both results compared exactly on the served columns.

Target: Spark >= 2M trades/s warm; the ratio to DuckDB is reported.

    .venv/bin/python -m bench.recompute [--trades 10000000] [--days 7]
"""

from __future__ import annotations

import argparse
import os
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote, urlparse

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from batch_layer.recompute import Chunk, Recompute
from harness.stack import private_stack
from infra.engines import spark_session
from producers.market import EXCHANGES, INSTRUMENTS, MarketConfig
from shared.views import BARS_1M, INPUTS, Agg, View

DAY_MS = 86_400_000
# Trades of one append commit (one ingest run's worth): files hold at most this many.
COMMIT_TRADES = 1_000_000
# A taker order fills against several resting orders: fills of one order share its
# ts (ties that the trade_id order then breaks). Fills per order ~ Geometric(p).
SWEEP_P = 0.7
SEED = 5

Ints = npt.NDArray[np.int64]


# --- raw.trades ---------------------------------------------------------------------------


def _books() -> list[tuple[str, int, float, float]]:
    """(exchange, instrument index, basis multiplier, liquidity) per order book."""
    books = []
    for name, listed, basis_bp, weight in EXCHANGES:
        for idx in listed:
            major = INSTRUMENTS[idx][0] in ("BTC", "ETH")
            books.append((name, idx, 1 + basis_bp / 10_000, weight * (3.0 if major else 1.0)))
    return books


def _decimal8(units: Ints) -> pa.Array:
    """DECIMAL(18,8) Arrow array whose unscaled values are `units` (all >= 0)."""
    words = np.zeros((len(units), 2), dtype=np.int64)  # little-endian int128: low, high
    words[:, 0] = units
    return pa.Array.from_buffers(pa.decimal128(18, 8), len(units),
                                 [None, pa.py_buffer(words.tobytes())])


def _running(groups: npt.NDArray[np.int64], steps: Ints, bases: Ints) -> Ints:
    """Per group, in array order: base of the group + running sum of its steps."""
    out = np.empty(len(groups), dtype=np.int64)
    for g in np.unique(groups):
        mask = groups == g
        out[mask] = bases[g] + np.cumsum(steps[mask])
    return out


def generate(n: int, days: int, start_ms: int) -> pa.Table:
    """n trades over [start_ms, start_ms + days) in raw.trades' columns (trade_date too).

    Books, prices (tick), sizes (lot) follow producers.market: the exchanges and
    instruments it lists, a shared random walk per instrument with a per-exchange
    basis, Pareto notionals in USD; taker orders sweep 1+ fills at one ts.
    """
    rng = np.random.default_rng(SEED)
    books = _books()
    liquidity = np.array([b[3] for b in books])
    book_p = liquidity / liquidity.sum()
    book_instr = np.array([b[1] for b in books])
    book_basis = np.array([b[2] for b in books])
    tick_exp = np.array([INSTRUMENTS[b[1]][3] for b in books])
    lot_exp = np.array([INSTRUMENTS[b[1]][4] for b in books])
    quote_btc = np.array([INSTRUMENTS[b[1]][1] == "BTC" for b in books])

    # Taker orders, then their fills (in time order).
    sizes = rng.geometric(SWEEP_P, n).astype(np.int64)
    cum = np.cumsum(sizes)
    orders = int(np.searchsorted(cum, n)) + 1
    sizes = sizes[:orders]
    sizes[-1] -= int(cum[orders - 1]) - n
    span_ms = days * DAY_MS
    order_ts = np.sort(rng.integers(start_ms, start_ms + span_ms, orders, dtype=np.int64))
    order_book = rng.choice(len(books), orders, p=book_p)
    order_buy = rng.random(orders) < 0.5
    ts = np.repeat(order_ts, sizes)
    book = np.repeat(order_book, sizes)
    buy = np.repeat(order_buy, sizes)

    # Mid price per second and instrument: a common factor plus idiosyncratic moves.
    seconds = span_ms // 1000
    vol = 0.0004
    steps = (rng.normal(0.0, vol, (seconds, 1)) * 0.6
             + rng.normal(0.0, vol * 0.8, (seconds, len(INSTRUMENTS))))
    mids = np.array([i[2] for i in INSTRUMENTS]) * np.exp(np.cumsum(steps, axis=0))
    del steps
    sec = (ts - start_ms) // 1000
    mid = mids[sec, book_instr[book]] * book_basis[book]
    price = mid * np.where(buy, 1.00005, 0.99995)
    ticks = np.maximum(np.rint(price * 10.0 ** tick_exp[book]), 1).astype(np.int64)
    price_units = ticks * (10 ** (8 - tick_exp[book])).astype(np.int64)
    quote_usd = np.where(quote_btc[book], mids[sec, 0], 1.0)
    notional_usd = np.minimum(300.0 * (rng.pareto(1.6, n) + 1.0), 5_000_000.0)
    lots = np.maximum(1, (notional_usd / (price_units / 1e8 * quote_usd)
                          * 10.0 ** lot_exp[book]).astype(np.int64))
    qty_units = lots * (10 ** (8 - lot_exp[book])).astype(np.int64)
    del mid, price, ticks, quote_usd, notional_usd, lots

    # Trade ids: per book, increasing by 1-3; one book's ids cross a power of ten, so
    # that string order ("1000000001" < "999999999") differs from numeric order there.
    bases = rng.integers(10**6, 10**9, len(books), dtype=np.int64)
    bases[0] = 10**9 - int(n * book_p[0])
    trade_id = _running(book, rng.integers(1, 4, n, dtype=np.int64), bases)
    # Kafka coordinates as ingest records them: key (book) -> one of 4 partitions.
    partition = (book % 4).astype(np.int32)
    offset = _running(partition.astype(np.int64), np.ones(n, dtype=np.int64),
                      np.full(4, -1, dtype=np.int64))

    names = pa.array([b[0] for b in books])
    symbols = pa.array([f"{INSTRUMENTS[b[1]][0]}-{INSTRUMENTS[b[1]][1]}" for b in books])
    book_idx = pa.array(book)
    return pa.table({
        "exchange": names.take(book_idx),
        "symbol": symbols.take(book_idx),
        "trade_id": pa.array(trade_id).cast(pa.string()),
        "price": _decimal8(price_units),
        "qty": _decimal8(qty_units),
        "side": pa.array(["sell", "buy"]).take(pa.array(buy.astype(np.int8))),
        "ts": pa.array(ts),
        "trade_date": pa.array((ts // DAY_MS).astype(np.int32)).cast(pa.date32()),
        "kafka_partition": pa.array(partition),
        "kafka_offset": pa.array(offset),
    })


def build_raw_trades(uri: str, n: int, days: int, start_ms: int) -> None:
    from deltalake import DeltaTable, WriterProperties, write_deltalake

    t0 = time.monotonic()
    trades = generate(n, days, start_ms)
    generated = time.monotonic() - t0
    t0 = time.monotonic()
    props = WriterProperties(compression="SNAPPY")  # Spark's default codec
    for run, lo in enumerate(range(0, n, COMMIT_TRADES), start=1):
        part = trades.slice(lo, COMMIT_TRADES)
        now_us = int(time.time() * 1_000_000)
        part = part.append_column(
            "ingested_at",
            pa.array(np.full(len(part), now_us, dtype=np.int64)).cast(pa.timestamp("us", "UTC")),
        ).append_column("ingest_run", pa.array(np.full(len(part), run, dtype=np.int64)))
        write_deltalake(uri, part, partition_by=["trade_date"], mode="append",
                        writer_properties=props)
    written = time.monotonic() - t0
    table = DeltaTable(uri)
    files = _paths(table.file_uris())
    size = sum(Path(f).stat().st_size for f in files)
    ties = int(np.count_nonzero(np.diff(trades["ts"].to_numpy()) == 0))
    del trades
    print(f"raw.trades: {n:,} trades over {days} day(s) from "
          f"{datetime.fromtimestamp(start_ms / 1000, tz=UTC):%Y-%m-%d}, {len(_books())} books "
          f"(exchange, symbol), {ties:,} fills sharing the ts of the previous "
          "one (sweeps)", flush=True)
    print(f"  built without Kafka: numpy generation {generated:.1f}s, written with deltalake "
          f"{written:.1f}s in the ingest layout (partitioned by trade_date, "
          f"{table.version() + 1} append commit(s) of <= {COMMIT_TRADES:,} trades, snappy); "
          f"{len(files)} Parquet files, {size / 2**20:,.0f} MiB", flush=True)


def _paths(uris: list[str]) -> list[str]:
    return [unquote(urlparse(u).path) if u.startswith("file:") else u for u in uris]


# --- DuckDB -------------------------------------------------------------------------------


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# DuckDB types DECIMAL(18,8) * DECIMAL(18,8) as DECIMAL(18,16) (it keeps products of
# 64-bit decimals 64-bit, and fails on overflow); a DECIMAL(19,8) operand gives the
# exact DECIMAL(37,16) product that Spark and Trino compute.
DUCKDB_INPUTS: Final = {
    "CAST(price * qty AS DECIMAL(37,16))":
        "CAST(CAST(price AS DECIMAL(19,8)) * qty AS DECIMAL(37,16))",
}


def duckdb_sql(view: View, files: list[str]) -> str:
    """`view`'s served columns over trades in Parquet files, in DuckDB SQL.

    Compiled from the declaration like the engines' compilers: FIRST/LAST pick the
    value at the smallest/largest (ts, trade_id) (a struct compares field by field,
    VARCHAR by bytes: the order of shared.views' order key), SUMs are exact DECIMAL.
    """
    columns = []
    for m in view.measures:
        if m.agg is Agg.COUNT:
            columns.append(f"count(*) AS {m.name}")
            continue
        assert m.input is not None
        value = DUCKDB_INPUTS.get(INPUTS[m.input].sql, INPUTS[m.input].sql)
        call = {
            Agg.SUM: f"sum({value})", Agg.MIN: f"min({value})", Agg.MAX: f"max({value})",
            Agg.FIRST: f"arg_min({value}, (ts, trade_id))",
            Agg.LAST: f"arg_max({value}, (ts, trade_id))",
        }[m.agg]
        columns.append(f"CAST({call} AS {m.type}) AS {m.name}")
    source = "[" + ", ".join(_sql_string(f) for f in files) + "]"
    keys = ", ".join(view.keys)
    # ts >= 0 (the contract), so ts % width is the offset into the window.
    # Compiled from the declaration and our own file names: nothing from outside.
    return (
        f"SELECT {keys}, epoch_ms(ts - ts % {view.window_ms}) AS window_start, "
        f"{', '.join(columns)} "
        f"FROM read_parquet({source}, hive_partitioning = false) "
        f"GROUP BY ALL"
    )


def served_columns(view: View) -> list[str]:
    return [*view.keys, "window_start", *(m.name for m in view.measures)]


def compare(view: View, spark_rows: pa.Table, duck_rows: pa.Table) -> tuple[int, int, int]:
    """(differing rows, rows only Spark has, rows only DuckDB has), exact values."""
    import duckdb

    spark_rows = spark_rows.set_column(
        spark_rows.schema.get_field_index("window_start"), "window_start",
        spark_rows["window_start"].cast(pa.timestamp("us")),  # UTC, as DuckDB's TIMESTAMP
    )
    keys = [*view.keys, "window_start"]
    on = " AND ".join(f"s.{k} = d.{k}" for k in keys)
    differ = " OR ".join(f"s.{c} IS DISTINCT FROM d.{c}" for c in served_columns(view)
                         if c not in keys)
    con = duckdb.connect()
    try:
        con.register("spark_rows", spark_rows)
        con.register("duck_rows", duck_rows)
        row = con.execute(
            f"SELECT count(*) FILTER (WHERE s.{keys[0]} IS NOT NULL "
            f"AND d.{keys[0]} IS NOT NULL AND ({differ})), "
            f"count(*) FILTER (WHERE d.{keys[0]} IS NULL), "
            f"count(*) FILTER (WHERE s.{keys[0]} IS NULL) "
            f"FROM spark_rows s FULL OUTER JOIN duck_rows d ON {on}"
        ).fetchone()
    finally:
        con.close()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


# --- the run ------------------------------------------------------------------------------


def local_cores(master: str) -> int:
    match = re.fullmatch(r"local\[(\d+|\*)(?:,\d+)?\]", master)
    if match is None:
        return 1 if master == "local" else os.cpu_count() or 1
    return (os.cpu_count() or 1) if match.group(1) == "*" else int(match.group(1))


def spark_line(label: str, chunks: list[Chunk], seconds: float, n: int) -> None:
    per_chunk = [c.seconds for c in chunks]
    print(f"spark {label}: {len(chunks)} chunk(s) (1 day each), "
          f"{sum(c.rows for c in chunks):,} rows, {sum(c.trades for c in chunks):,} trades "
          f"in {seconds:.1f}s: {n / seconds:,.0f} trades/s (chunks {min(per_chunk):.1f}-"
          f"{max(per_chunk):.1f}s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trades", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=7, help="time span of the trades")
    parser.add_argument("--shuffle-partitions", type=int, default=4,
                        help="spark.sql.shuffle.partitions (Settings default: 4)")
    args = parser.parse_args()
    n, days = args.trades, args.days
    view = BARS_1M
    # Whole UTC days, starting at the generator's default day.
    start_ms = MarketConfig().start_ms // DAY_MS * DAY_MS
    start = datetime.fromtimestamp(start_ms / 1000, tz=UTC)
    end = start + timedelta(days=days)

    with private_stack(start=False, spark_driver_memory="2g",
                       spark_shuffle_partitions=args.shuffle_partitions) as settings:
        cores = local_cores(settings.spark_master)
        trades_uri = settings.table_uri("raw", "trades")
        build_raw_trades(trades_uri, n, days, start_ms)

        t0 = time.monotonic()
        spark = spark_session(settings, "bench-recompute")
        print(f"spark session up in {time.monotonic() - t0:.1f}s: master "
              f"{settings.spark_master}, driver {settings.spark_driver_memory}, "
              f"spark.sql.shuffle.partitions={settings.spark_shuffle_partitions}", flush=True)
        spark_s: list[float] = []
        try:
            job = Recompute(settings, spark)
            for label in ("cold", "warm"):
                t0 = time.monotonic()
                chunks = job.run(view, start, end)
                spark_s.append(time.monotonic() - t0)
                spark_line(label, chunks, spark_s[-1], n)
        finally:
            spark.stop()

        import duckdb
        from deltalake import DeltaTable

        files = _paths(DeltaTable(trades_uri).file_uris())
        sql = duckdb_sql(view, files)
        duck_s: list[float] = []
        duck_rows: Any = None
        con = duckdb.connect()
        try:
            con.execute(f"SET threads = {cores}")
            for label in ("cold", "warm"):
                t0 = time.monotonic()
                duck_rows = con.sql(sql).to_arrow_table()
                duck_s.append(time.monotonic() - t0)
                total = sum(duck_rows["trade_count"].to_pylist())
                print(f"duckdb {duckdb.__version__} {label}: {duck_rows.num_rows:,} rows, "
                      f"{total:,} trades in {duck_s[-1]:.2f}s: {n / duck_s[-1]:,.0f} trades/s "
                      f"({cores} threads, {len(files)} files)", flush=True)
        finally:
            con.close()

        served = served_columns(view)
        spark_rows = DeltaTable(settings.table_uri("batch", view.name)).to_pyarrow_table(
            columns=served)
        differing, only_spark, only_duck = compare(view, spark_rows, duck_rows)
        equal = differing == only_spark == only_duck == 0
        print(f"results equal: {equal} ({spark_rows.num_rows:,} Spark rows, "
              f"{duck_rows.num_rows:,} DuckDB rows; {differing:,} differing, {only_spark:,} "
              f"only in Spark, {only_duck:,} only in DuckDB; columns {', '.join(served)})",
              flush=True)

    print()
    print(f"batch recompute of {n:,} trades into {view.name} ({days} day(s), "
          f"{spark_rows.num_rows:,} bars), same Parquet files, {cores} cores each")
    header = f"{'engine':<44} {'cold s':>8} {'warm s':>8} {'trades/s warm':>15}"
    print(header)
    print("-" * len(header))
    print(f"{'spark: Recompute -> Delta batch.' + view.name:<44} {spark_s[0]:>8.1f} "
          f"{spark_s[1]:>8.1f} {n / spark_s[1]:>15,.0f}")
    print(f"{'duckdb: Parquet -> Arrow in memory':<44} {duck_s[0]:>8.2f} {duck_s[1]:>8.2f} "
          f"{n / duck_s[1]:>15,.0f}")
    ratio = duck_s[1] / spark_s[1]
    print(f"ratio Spark/DuckDB (warm trades/s): {ratio:.3f} (DuckDB {1 / ratio:.1f}x faster)")
    rate = n / spark_s[1]
    print(f"target Spark >= 2,000,000 trades/s warm: {'met' if rate >= 2e6 else 'not met'} "
          f"({rate:,.0f})")
    print("notes: Spark's time includes what `concord batch recompute` does beyond the bars: "
          "the open_key/close_key columns, a stats pass over the cached rows and one "
          "replaceWhere Delta commit per day; DuckDB only materialises the served columns "
          "in memory. Both read the files from the OS page cache (just written). "
          f"Spark {settings.spark_master} with spark.sql.shuffle.partitions="
          f"{args.shuffle_partitions}; DuckDB threads={cores}.")


if __name__ == "__main__":
    main()
