"""Serving latency: Trino on the serving views, with Trino's own floor measured alongside.

Three modes, each on a private stack (free ports, temp home):

- default: a lake built directly with delta-rs (no Spark, no Kafka traffic), shaped like
  the real one: `batch.bars_1m` holds `--days` of whole-minute partial rows for 3
  exchanges x 7 symbols (one commit per day, as `batch recompute` chunks);
  `meta.boundaries` one row 3 minutes before the newest window; `speed.bars_1m` the
  last 60 minutes as per-slice partial rows (5 per key and minute) appended in
  `--speed-commits` small commits, then the same after the batch run's maintenance
  compacted them. Values are consistent: the batch row of a minute is the merge of its
  speed slices; open/close sit between low and high, vwap too.
- `--live`: the demo's processes (the speed job, a live stream of `--rate` trades/s,
  the batch loop every `--batch-every` s, the dashboard), measured once the first
  boundary is published.
- `--analyst`: history on the built lake with `--days` 30: `serving.bars_1h` of one
  book over 30 days, and a 30-day scan aggregating `serving.bars_1m` for all books,
  each against the same query without the view; EXPLAIN ANALYZE figures.

Each query is measured client-side (execute + fetch all rows, HTTPS with the password,
one connection per client) at 1 client and at 8 concurrent clients: p50/p95/p99/max,
queries/s, and Trino's own accounting (queued, analysis, planning, execution). The floor
in the same invocation: `SELECT 1` and the same book and hour read from one Delta table
without the view. Targets (issue 14): bars_1m one book last hour p50 <= 100 ms and
p99 <= 300 ms at 1 client, p50 <= 300 ms at 8; bars_1h 30 days <= 500 ms; 30-day scan
<= 2 s.

    .venv/bin/python -m bench.serving_latency [--days 7] [--queries 50]
        [--queries-per-client 25] [--speed-commits 200] [--explain]
    .venv/bin/python -m bench.serving_latency --live [--rate 200] [--batch-every 180]
    .venv/bin/python -m bench.serving_latency --analyst [--days 30]
"""

from __future__ import annotations

import argparse
import math
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from batch_layer.recompute import ROW_GROUP_ROWS, write_batch_rows
from concord import demo
from harness.stack import private_stack
from serving_layer.refresh import refresh
from serving_layer.trino import connect, query
from shared.config import Settings
from shared.maintenance import maintain
from shared.tables import BOUNDARIES, arrow_schema, batch_columns, speed_columns
from shared.views import BARS_1M, order_key

Ints = npt.NDArray[np.int64]

EXCHANGES = ("binance", "okx", "bybit")
BASIS_BP = (0.0, 0.5, 0.8)
# symbol, start price, tick decimals, lot decimals, mean qty per trade, trades/minute
SYMBOLS: tuple[tuple[str, float, int, int, float, float], ...] = (
    ("BTC-USDT", 64250.0, 2, 5, 0.03, 300.0),
    ("ETH-USDT", 3150.0, 2, 4, 0.6, 200.0),
    ("SOL-USDT", 145.0, 3, 3, 12.0, 120.0),
    ("XRP-USDT", 0.52, 4, 1, 3500.0, 80.0),
    ("DOGE-USDT", 0.15, 5, 0, 12000.0, 60.0),
    ("ETH-BTC", 0.049, 5, 4, 0.6, 20.0),
    ("ADA-USDT", 0.45, 4, 1, 900.0, 40.0),
)
KEYS = [(e, s[0]) for e in EXCHANGES for s in SYMBOLS]
SLICES = 5  # speed partial rows per key and minute
MINUTE_MS = 60_000
SLICE_MS = MINUTE_MS // SLICES
SCALE = 10**8
SPEED_MINUTES = 60
BOUNDARY_LAG = timedelta(minutes=3)
WARM_UP = 10  # queries before measuring (JIT, metadata caches)
VOL_PER_SLICE = 0.6 / np.sqrt(365 * 86_400 * 1000 / SLICE_MS)  # 60% a year


@dataclass
class Slices:
    """Partial rows of every key over consecutive slices; arrays shaped (keys, slices)."""

    start_ms: Ints
    open: Ints  # prices and quantities in units of 1e-8
    high: Ints
    low: Ints
    close: Ints
    volume: Ints
    buy_volume: Ints
    notional: npt.NDArray[np.object_]  # units of 1e-16, exceeds int64
    trade_count: Ints
    first_ts: Ints
    first_id: Ints
    last_ts: Ints
    last_id: Ints


def generate(first_minute_ms: int, minutes: int, seed: int = 6) -> Slices:
    """SLICES partial rows per key and minute, random walks shared across exchanges."""
    rng = np.random.default_rng(seed)
    n = minutes * SLICES
    start_ms = first_minute_ms + np.arange(n, dtype=np.int64) * SLICE_MS
    rows: dict[str, list[Any]] = {f: [] for f in Slices.__dataclass_fields__ if f != "start_ms"}
    for _, basis in zip(EXCHANGES, BASIS_BP, strict=True):
        for i, (_, price, tick, lot, qty, per_minute) in enumerate(SYMBOLS):
            walk_rng = np.random.default_rng([seed, i])  # the same mid for every exchange
            mid = price * np.exp(np.cumsum(walk_rng.normal(0, VOL_PER_SLICE, n + 1)))
            mid *= 1 + basis * 1e-4
            ticks, lots = 10**tick, 10**lot
            noise = VOL_PER_SLICE * 0.2
            o = np.maximum(np.rint(mid[:-1] * (1 + rng.normal(0, noise, n)) * ticks), 1)
            c = np.maximum(np.rint(mid[1:] * (1 + rng.normal(0, noise, n)) * ticks), 1)
            spread = np.abs(rng.normal(0, VOL_PER_SLICE * 0.5, n))
            h = np.maximum(np.ceil(np.maximum(o, c) * (1 + spread)), np.maximum(o, c))
            lo = np.maximum(np.floor(np.minimum(o, c) * (1 - spread)), 1)
            lo = np.minimum(lo, np.minimum(o, c))
            vwap = np.minimum(lo + np.floor(rng.random(n) * (h - lo + 1)), h)
            count = np.maximum(rng.poisson(per_minute / SLICES, n), 1).astype(np.int64)
            vol = np.rint(count * qty * lots * rng.lognormal(-0.125, 0.5, n))
            vol = np.maximum(vol, count).astype(np.int64)
            buy = np.floor(vol * rng.beta(2, 2, n)).astype(np.int64)
            to_units = SCALE // ticks
            vol_units = vol * (SCALE // lots)
            gap = SLICE_MS // (count + 1)
            first_ts = start_ms + rng.integers(0, gap + 1)
            last_ts = np.maximum(start_ms + SLICE_MS - 1 - rng.integers(0, gap + 1), first_ts)
            last_id = 10**9 + np.cumsum(count)
            rows["open"].append(o.astype(np.int64) * to_units)
            rows["high"].append(h.astype(np.int64) * to_units)
            rows["low"].append(lo.astype(np.int64) * to_units)
            rows["close"].append(c.astype(np.int64) * to_units)
            rows["volume"].append(vol_units)
            rows["buy_volume"].append(buy * (SCALE // lots))
            rows["notional"].append((vwap.astype(np.int64) * to_units).astype(object)
                                    * vol_units.astype(object))
            rows["trade_count"].append(count)
            rows["first_ts"].append(first_ts)
            rows["first_id"].append(last_id - count + 1)
            rows["last_ts"].append(last_ts)
            rows["last_id"].append(last_id)
    stacked = {name: np.stack(values) for name, values in rows.items()}
    return Slices(start_ms=np.broadcast_to(start_ms, stacked["open"].shape).copy(), **stacked)


def merge_minutes(s: Slices) -> Slices:
    """Whole-minute rows: the merge of each minute's SLICES partial rows."""
    def shaped(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
        return a.reshape(a.shape[0], -1, SLICES)

    return Slices(
        start_ms=shaped(s.start_ms)[:, :, 0], open=shaped(s.open)[:, :, 0],
        high=shaped(s.high).max(axis=2), low=shaped(s.low).min(axis=2),
        close=shaped(s.close)[:, :, -1], volume=shaped(s.volume).sum(axis=2),
        buy_volume=shaped(s.buy_volume).sum(axis=2), notional=shaped(s.notional).sum(axis=2),
        trade_count=shaped(s.trade_count).sum(axis=2),
        first_ts=shaped(s.first_ts)[:, :, 0], first_id=shaped(s.first_id)[:, :, 0],
        last_ts=shaped(s.last_ts)[:, :, -1], last_id=shaped(s.last_id)[:, :, -1],
    )


def _decimals(units: npt.NDArray[Any], type_: pa.DataType) -> pa.Array:
    """An Arrow decimal array from integer units of its scale (exact, via the int128s)."""
    if units.dtype == np.int64:
        data = np.stack([units, np.where(units < 0, -1, 0)], axis=1).astype("<i8").tobytes()
    else:
        data = b"".join(int(u).to_bytes(16, "little", signed=True) for u in units)
    return pa.Array.from_buffers(type_, len(units), [None, pa.py_buffer(data)])


def _text(units: int) -> str:
    """A DECIMAL(18,8) as Spark's CAST(... AS STRING) writes it (the order key's value)."""
    return f"{units // SCALE}.{units % SCALE:08d}"


def table(s: Slices, schema: pa.Schema, select: npt.NDArray[np.bool_],
          emitted_ms: Ints | None = None) -> pa.Table:
    """The rows of `s` where `select` (same shape) as a table of `schema`."""
    key_index = np.broadcast_to(np.arange(len(KEYS))[:, None], select.shape)[select]
    flat = {name: getattr(s, name)[select] for name in Slices.__dataclass_fields__}
    columns: dict[str, Any] = {
        "exchange": pa.array([KEYS[k][0] for k in key_index], pa.string()),
        "symbol": pa.array([KEYS[k][1] for k in key_index], pa.string()),
        "window_start": pa.array(flat["start_ms"] // MINUTE_MS * MINUTE_MS * 1000,
                                 pa.timestamp("us", tz="UTC")),
        "open_key": pa.array([order_key(int(t), str(i), _text(int(v))) for t, i, v in zip(
            flat["first_ts"], flat["first_id"], flat["open"], strict=True)], pa.string()),
        "close_key": pa.array([order_key(int(t), str(i), _text(int(v))) for t, i, v in zip(
            flat["last_ts"], flat["last_id"], flat["close"], strict=True)], pa.string()),
        "trade_count": pa.array(flat["trade_count"], pa.int64()),
    }
    for name in ("open", "high", "low", "close", "volume", "buy_volume", "notional"):
        columns[name] = _decimals(flat[name], schema.field(name).type)
    if emitted_ms is not None:
        columns["emitted_at"] = pa.array(emitted_ms * 1000, pa.timestamp("us", tz="UTC"))
    return pa.Table.from_pydict({f.name: columns[f.name] for f in schema}, schema=schema)


def write_batch(settings: Settings, bars: Slices, *, clustered: bool) -> None:
    """batch.bars_1m from `bars`, one commit per day like `batch recompute`'s chunks: in
    the batch layer's layout (sorted by book, small row groups: batch_layer.recompute), or
    plain (the rows as generated, minute by minute: the layout before issue 14)."""
    batch_schema = arrow_schema(batch_columns(BARS_1M))
    batch_uri = settings.table_uri("batch", BARS_1M.name)
    day = bars.start_ms // 86_400_000
    for d in np.unique(day):
        rows = table(bars, batch_schema, day == d)
        if not clustered:
            write_deltalake(batch_uri, rows, mode="append")
            continue
        lo = datetime.fromtimestamp(int(d) * 86_400, tz=UTC)
        hi = lo + timedelta(days=1)
        write_batch_rows(batch_uri, rows, BARS_1M,
                         replace=f"window_start >= '{lo:%Y-%m-%dT%H:%M:%SZ}' AND "
                                 f"window_start < '{hi:%Y-%m-%dT%H:%M:%SZ}'"
                         if DeltaTable.is_deltatable(batch_uri) else None)


def build_lake(settings: Settings, days: int, speed_commits: int, *,
               clustered: bool = True) -> tuple[datetime, Slices]:
    """Writes batch, boundary and speed rows; returns the newest window and the batch
    bars."""
    newest = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    minutes = days * 1440
    first_ms = int(newest.timestamp() * 1000) - (minutes - 1) * MINUTE_MS
    t0 = time.monotonic()
    slices = generate(first_ms, minutes)
    bars = merge_minutes(slices)

    batch_uri = settings.table_uri("batch", BARS_1M.name)
    write_batch(settings, bars, clustered=clustered)
    batch_rows = bars.open.size

    boundary = newest - BOUNDARY_LAG
    write_deltalake(settings.table_uri("meta", "boundaries"), pa.Table.from_pylist(
        [{"view_name": BARS_1M.name, "boundary": boundary, "run_id": 1, "raw_version": 0,
          "published_at": boundary + timedelta(seconds=150)}],
        schema=arrow_schema(BOUNDARIES)), mode="append")

    speed_schema = arrow_schema(speed_columns(BARS_1M))
    speed_uri = settings.table_uri("speed", BARS_1M.name)
    recent = slices.start_ms >= int(newest.timestamp() * 1000) - (SPEED_MINUTES - 1) * MINUTE_MS
    emitted = slices.start_ms + SLICE_MS + 1000  # a slice is emitted once it closed
    rows = table(slices, speed_schema, recent, emitted[recent])
    rows = rows.sort_by("emitted_at")
    for chunk in np.array_split(np.arange(rows.num_rows), speed_commits):
        if len(chunk):
            write_deltalake(speed_uri, rows.slice(int(chunk[0]), len(chunk)), mode="append")

    batch_files = len(DeltaTable(batch_uri).file_uris())
    speed = DeltaTable(speed_uri)
    print(f"lake built in {time.monotonic() - t0:.1f}s: batch.bars_1m {batch_rows:,} rows "
          f"({days} days x {len(KEYS)} keys) in {batch_files} files; speed.bars_1m "
          f"{rows.num_rows:,} rows in {len(speed.file_uris())} files, version "
          f"{speed.version()}; boundary {boundary:%Y-%m-%d %H:%M}, newest window "
          f"{newest:%H:%M} UTC", flush=True)
    return newest, bars


def bars_sql(key: tuple[str, str], since: datetime, schema: str = "serving") -> str:
    exchange, symbol = key
    return (f"SELECT * FROM lake.{schema}.bars_1m "
            f"WHERE exchange = '{exchange}' AND symbol = '{symbol}' "
            f"AND window_start >= TIMESTAMP '{since:%Y-%m-%d %H:%M:%S} UTC' "
            "ORDER BY window_start")


@dataclass
class Sample:
    ms: float
    rows: int
    query_id: str


def client(settings: Settings, sqls: Sequence[str], start: threading.Barrier | None,
           out: list[Sample]) -> None:
    """Runs `sqls` one after the other on one connection, appending a Sample each."""
    try:
        with connect(settings) as conn:
            if start is not None:
                start.wait()
            for sql in sqls:
                cur = conn.cursor()
                t0 = time.perf_counter()
                cur.execute(sql)
                rows = cur.fetchall()
                out.append(Sample((time.perf_counter() - t0) * 1000, len(rows),
                                  cur.query_id or ""))
    except BaseException:
        if start is not None:
            start.abort()  # the others (and the timer) must not wait for this client
        raise


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


Sqls = Callable[[int, int], str]  # (client, query number) -> SQL


def level(settings: Settings, label: str, clients: int, per_client: int,
          sql: Sqls) -> float:
    """`clients` threads, each running `per_client` queries; prints the figures and
    returns the p50 in ms."""
    samples: list[list[Sample]] = [[] for _ in range(clients)]
    barrier = threading.Barrier(clients + 1) if clients > 1 else None
    threads = [
        threading.Thread(target=client, args=(
            settings, [sql(c, q) for q in range(per_client)], barrier, samples[c]))
        for c in range(clients)
    ]
    for t in threads:
        t.start()
    if barrier is not None:
        barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    flat = [s for per in samples for s in per]
    if len(flat) != clients * per_client:
        raise RuntimeError(f"{clients * per_client - len(flat)} queries failed (see above)")
    ms = [s.ms for s in flat]
    rows = sorted({s.rows for s in flat})
    p50 = percentile(ms, 50)
    print(f"{label}, {clients} client(s) x {per_client}: p50 {p50:.0f} ms, "
          f"p95 {percentile(ms, 95):.0f}, p99 {percentile(ms, 99):.0f}, max {max(ms):.0f}; "
          f"{len(flat) / wall:.1f} queries/s; rows {rows[0]}..{rows[-1]}", flush=True)
    server_side(settings, [s.query_id for s in flat])
    return p50


def server_side(settings: Settings, ids: Sequence[str]) -> None:
    """Medians of Trino's own accounting of the queries: queued, analysis, planning,
    execution (created -> end minus the rest)."""
    listed = ", ".join(f"'{i}'" for i in ids if i)
    found = query(settings, "SELECT queued_time_ms, analysis_time_ms, planning_time_ms, "
                  "to_milliseconds(\"end\" - created) FROM system.runtime.queries "
                  f"WHERE query_id IN ({listed})")
    if not found:
        return
    parts = [statistics.median(float(r[i] or 0) for r in found) for i in range(4)]
    print(f"  server side (median of {len(found)}): queued {parts[0]:.0f} ms, analysis "
          f"{parts[1]:.0f} ms, planning {parts[2]:.0f} ms, execution "
          f"{parts[3] - sum(parts[:3]):.0f} ms, created->end {parts[3]:.0f} ms", flush=True)


def floor(settings: Settings, queries: int, one_table: str) -> float:
    """Trino's own floor on this box, now: SELECT 1 (the protocol, TLS and password) and
    `one_table` (the same book and hour from one Delta table, no view); returns the
    latter's p50."""
    level(settings, "floor: SELECT 1", 1, queries, lambda c, q: "SELECT 1")
    return level(settings, "floor: one table, no view", 1, queries, lambda c, q: one_table)


def serving_levels(settings: Settings, keys: Sequence[tuple[str, str]], since: datetime,
                   queries: int, per_client: int) -> None:
    """The targets' queries at 1 and 8 clients, with the floor in the same invocation."""
    exchanges = sorted({e for e, _ in keys})
    base = floor(settings, queries, bars_sql(keys[0], since, "batch"))
    bars = level(settings, "serving.bars_1m, one book, last hour", 1, queries,
                 lambda c, q: bars_sql(keys[q % len(keys)], since))
    print(f"ratio serving.bars_1m / one-table floor (p50, 1 client): {bars / base:.2f}x; "
          f"target p50 <= 100 ms: {'met' if bars <= 100 else 'not met'}", flush=True)
    level(settings, "serving.bars_1m, one book, last hour", 8, per_client,
          lambda c, q: bars_sql(keys[(c * 7 + q) % len(keys)], since))
    ticker = level(settings, "serving.ticker, one exchange", 1, queries,
                   lambda c, q: ticker_sql(exchanges[q % len(exchanges)]))
    print(f"ratio serving.ticker / one-table floor (p50, 1 client): {ticker / base:.2f}x",
          flush=True)
    level(settings, "serving.ticker, one exchange", 8, per_client,
          lambda c, q: ticker_sql(exchanges[(c + q) % len(exchanges)]))


def ticker_sql(exchange: str) -> str:
    return f"SELECT * FROM lake.serving.ticker WHERE exchange = '{exchange}' ORDER BY symbol"


def static(args: argparse.Namespace) -> None:
    """The lake built by build_lake, between two batch runs and after maintenance."""
    with private_stack() as settings:
        newest, _ = build_lake(settings, args.days, args.speed_commits)
        since = newest - timedelta(hours=1)
        t0 = time.monotonic()
        refresh(settings)
        print(f"serve refresh: {time.monotonic() - t0:.1f}s", flush=True)
        warm: list[Sample] = []
        client(settings, [bars_sql(k, since) for k in KEYS[:WARM_UP]], None, warm)
        print("warm-up: " + ", ".join(f"{s.ms:.0f}" for s in warm) + " ms; rows "
              f"{warm[-1].rows}", flush=True)
        print(f"-- speed.bars_1m as the committers leave it between two batch runs "
              f"({args.speed_commits} small files)", flush=True)
        serving_levels(settings, KEYS, since, args.queries, args.queries_per_client)
        done = maintain(settings.table_uri("speed", "bars_1m"), keep_from=None)
        assert done is not None
        print(f"-- after the batch run's maintenance (shared.maintenance): "
              f"{done.files_before} -> {done.files_after} speed files", flush=True)
        serving_levels(settings, KEYS, since, args.queries, args.queries_per_client)
        if args.explain:
            plan = query(settings, "EXPLAIN ANALYZE " + bars_sql(KEYS[0], since))
            print(plan[0][0], flush=True)


def analyst(args: argparse.Namespace) -> None:
    """History on a lake of --days of batch bars for 21 books (issue 14, target 2), first
    with the batch rows as generated (minute by minute, every book in every row group),
    then rewritten in the batch layer's layout (batch_layer.recompute: sorted by book,
    small row groups), the same rows: both figures and their ratio."""
    with private_stack() as settings:
        newest, bars = build_lake(settings, args.days, speed_commits=10, clustered=False)
        refresh(settings)
        maintain(settings.table_uri("speed", "bars_1m"), keep_from=None)
        since = f"TIMESTAMP '{newest - timedelta(days=args.days):%Y-%m-%d %H:%M:%S} UTC'"
        symbols = [s[0] for s in SYMBOLS]

        def hourly(c: int, q: int) -> str:
            return ("SELECT * FROM lake.serving.bars_1h WHERE exchange = 'binance' AND "
                    f"symbol = '{symbols[(c + q) % len(symbols)]}' AND window_start >= {since} "
                    "ORDER BY window_start")

        def scan(table: str) -> str:
            return ("SELECT exchange, symbol, count(*) AS minutes, sum(trade_count) AS trades, "
                    "sum(volume) AS volume, min(low) AS low, max(high) AS high, "
                    f"sum(notional) / sum(volume) AS vwap FROM lake.{table} "
                    f"WHERE window_start >= {since} GROUP BY exchange, symbol ORDER BY 1, 2")

        def history(layout: str) -> tuple[float, float]:
            print(f"--- batch layout: {layout}", flush=True)
            client(settings, [hourly(0, q) for q in range(3)] + [scan("serving.bars_1m")],
                   None, [])
            base = floor(settings, args.queries // 2,
                         bars_sql(KEYS[0], newest - timedelta(hours=1), "batch"))
            one = level(settings, f"serving.bars_1h, one book, {args.days} days", 1,
                        args.queries // 2, hourly)
            print(f"ratio / one-table floor: {one / base:.2f}x; target p50 <= 500 ms: "
                  f"{'met' if one <= 500 else 'not met'}", flush=True)
            raw = level(settings, f"floor: the same scan of lake.batch.bars_1m ({args.days} "
                        "days, no view)", 1, 5, lambda c, q: scan("batch.bars_1m"))
            full = level(settings, f"{args.days}-day scan of serving.bars_1m, all books", 1, 5,
                         lambda c, q: scan("serving.bars_1m"))
            print(f"ratio / the same scan without the view: {full / raw:.2f}x; target p50 <= "
                  f"2 s: {'met' if full <= 2000 else 'not met'}", flush=True)
            level(settings, "serving.ticker, one exchange", 1, args.queries // 2,
                  lambda c, q: ticker_sql(EXCHANGES[q % len(EXCHANGES)]))
            for sql in (hourly(0, 0), scan("serving.bars_1m")):
                plan = query(settings, "EXPLAIN ANALYZE " + sql)[0][0]
                print("EXPLAIN ANALYZE " + sql, flush=True)
                print("\n".join(line for line in plan.splitlines()
                                if any(k in line for k in ("Fragment", "CPU:", "Input:",
                                                           "ScanF", "Physical input",
                                                           "Output:"))), flush=True)
            return one, full

        plain = history("plain (rows as generated, every book in each row group)")
        write_batch(settings, bars, clustered=True)
        files = len(DeltaTable(settings.table_uri("batch", BARS_1M.name)).file_uris())
        clustered = history(f"clustered (batch_layer.recompute: sorted by book, row groups "
                            f"of {ROW_GROUP_ROWS} rows; {files} files)")
        print(f"clustered / plain: bars_1h one book {clustered[0] / plain[0]:.2f}x "
              f"({plain[0]:.0f} -> {clustered[0]:.0f} ms), 30-day scan "
              f"{clustered[1] / plain[1]:.2f}x ({plain[1]:.0f} -> {clustered[1]:.0f} ms)",
              flush=True)


def live(args: argparse.Namespace) -> None:
    """The demo's processes on a private stack: the speed job, a live stream of --rate
    trades/s, the batch loop every --batch-every s and the dashboard; measured once the
    first boundary is published and the speed job has written for --settle s."""
    with private_stack() as settings:
        demo.start(settings, rate=args.rate, every_s=args.batch_every,
                   say=lambda line: print(line, flush=True))
        deadline = time.monotonic() + 600
        while not query(settings, "SELECT 1 FROM lake.serving.boundaries"):
            if time.monotonic() > deadline:
                raise RuntimeError("no boundary published after 10 minutes: see the batch "
                                   f"loop's log in {settings.log_dir / 'batch'}")
            time.sleep(5)
        time.sleep(args.settle)
        keys = [(str(e), str(s)) for e, s in query(
            settings, "SELECT exchange, symbol FROM lake.serving.ticker ORDER BY 1, 2")]
        since = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
        print(f"live: {args.rate} trades/s, {len(keys)} books, batch loop every "
              f"{args.batch_every} s, dashboard running; {speed_files(settings)}", flush=True)
        warm: list[Sample] = []
        client(settings, [bars_sql(k, since) for k in keys[:WARM_UP]],
               None, warm)
        serving_levels(settings, keys, since, args.queries,
                       args.queries_per_client)
        print(f"afterwards: {speed_files(settings)}", flush=True)
        if args.explain:
            plan = query(settings, "EXPLAIN ANALYZE " + bars_sql(keys[0], since))
            print(plan[0][0], flush=True)


def speed_files(settings: Settings) -> str:
    table = DeltaTable(settings.table_uri("speed", BARS_1M.name))
    return f"speed.bars_1m {len(table.file_uris())} files, version {table.version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--live", action="store_true",
                      help="measure on the demo's live processes instead of a built lake")
    mode.add_argument("--analyst", action="store_true",
                      help="30-day history queries on a built lake (--days, default 30)")
    parser.add_argument("--rate", type=int, default=demo.DEMO_RATE,
                        help="--live: trades/s of the stream")
    parser.add_argument("--batch-every", type=int, default=Settings().batch_every_s,
                        help="--live: seconds between batch runs")
    parser.add_argument("--settle", type=int, default=60,
                        help="--live: seconds after the first boundary before measuring")
    parser.add_argument("--days", type=int, help="days of batch bars (7; --analyst 30)")
    parser.add_argument("--queries", type=int, default=50, help="queries at 1 client")
    parser.add_argument("--queries-per-client", type=int, default=25,
                        help="queries of each client at 8 clients")
    parser.add_argument("--speed-commits", type=int, default=200,
                        help="appends the last hour of speed partials is written in")
    parser.add_argument("--explain", action="store_true",
                        help="print EXPLAIN ANALYZE of one query at the end")
    args = parser.parse_args()
    if args.days is None:
        args.days = 30 if args.analyst else 7
    (live if args.live else analyst if args.analyst else static)(args)


if __name__ == "__main__":
    main()
