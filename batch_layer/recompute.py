"""`concord batch recompute`: raw.trades -> batch.<view> for a time range, idempotent.

The range is widened to whole windows of the view ([from, to) floored / ceiled to the
window), the view's partial rows are computed from raw.trades (batch_layer.spark_views,
the compiled declaration) and written with Delta's replaceWhere on window_start: one
atomic commit replaces exactly the windows of the range, so running it again, or after
a crash, leaves the same table. Windows of the range without trades end up with no
row (a recompute after trades were removed removes their rows).

Long ranges go in chunks, each its own commit, with progress: whole days, as many
together as hold about `CHUNK_TRADES` trades (counted from raw.trades' Delta log), so a
chunk's fixed cost (its Spark jobs, its commit) is paid per ~20M trades, not per day.

Each chunk is aggregated with the fast compilation of the view (batch_layer.spark_views:
hash aggregation over BIGINTs); when any of its trades is one the fast form cannot take
exactly (`_misfits`), the chunk is aggregated again with the exact compilation.

Batch rows are written sorted by the view's keys and window in small row groups
(`ROW_GROUP_ROWS`), so that a query of one book reads its row groups only.

A chunk's rows (partials: per window and key, not per trade) are few; up to
`DRIVER_ROWS` of them are committed by the driver with delta-rs's replaceWhere, which
costs a fraction of Spark's Delta write for the few windows a quiet `batch run` redoes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import pyarrow as pa

from batch_layer.spark_views import MISFITS, partials
from shared.bookkeeping import current_boundaries
from shared.config import Settings
from shared.tables import open_table
from shared.views import View

if TYPE_CHECKING:
    from deltalake import DeltaTable
    from pyspark.sql import DataFrame, Row, SparkSession


@dataclass(frozen=True)
class Chunk:
    start: datetime
    end: datetime
    windows: int  # windows with at least one trade, i.e. rows' distinct window_start
    rows: int
    trades: int
    seconds: float


def align(view: View, start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """[start, end) widened to whole windows of the view (UTC)."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("recompute range bounds must be timezone-aware (UTC)")
    if end <= start:
        raise ValueError(f"empty range: --to {end.isoformat()} is not after --from "
                         f"{start.isoformat()}")
    width = view.window_ms
    lo = int(start.timestamp() * 1000) // width * width
    hi = -(-int(end.timestamp() * 1000) // width) * width
    return (datetime.fromtimestamp(lo / 1000, tz=UTC), datetime.fromtimestamp(hi / 1000, tz=UTC))


# The layout of batch rows: a chunk's file holds every book of its days, sorted by the
# view's keys and window, in row groups of at most this many rows. One book's rows then
# sit in a row group or two of each file, and a one-book query (the desk's, an analyst's
# history of one symbol) skips the others by their min/max statistics: Trino prunes row
# groups with them, Delta's file statistics cannot (every file holds every book).
ROW_GROUP_ROWS = 2048
# The same for a chunk Spark writes (its Parquet writer sizes row groups in bytes).
ROW_GROUP_BYTES = 256 * 1024


def cluster_order(view: View) -> list[str]:
    """The order batch rows are written in: the view's keys, then the window."""
    return [*view.keys, "window_start"]


def write_batch_rows(uri: str | DeltaTable, rows: pa.Table, view: View, *,
                     replace: str | None = None) -> None:
    """Write a view's batch rows with delta-rs in the batch layout (ROW_GROUP_ROWS):
    replacing the rows the predicate `replace` selects, or else appended."""
    from deltalake import WriterProperties, write_deltalake

    ordered = rows.sort_by([(c, "ascending") for c in cluster_order(view)])
    layout = WriterProperties(max_row_group_size=ROW_GROUP_ROWS)
    if replace is None:
        write_deltalake(uri, ordered, mode="append", writer_properties=layout)
    else:
        write_deltalake(uri, ordered, mode="overwrite", predicate=replace,
                        writer_properties=layout)


def replace_windows(table: DeltaTable, rows: pa.Table, start: datetime, end: datetime,
                    view: View) -> None:
    """Replace the windows [start, end) of a batch table with `rows` in one commit
    (delta-rs's replaceWhere: rows of other windows are kept, `rows` must all be inside)."""
    schema = pa.schema(table.schema().to_arrow())
    iso = "%Y-%m-%dT%H:%M:%SZ"
    write_batch_rows(table, rows.select(schema.names).cast(schema), view,
                     replace=f"window_start >= '{start.astimezone(UTC).strftime(iso)}' AND "
                               f"window_start < '{end.astimezone(UTC).strftime(iso)}'")


def _sql_ts(moment: datetime) -> str:
    return f"TIMESTAMP '{moment.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%S')}'"


# A chunk of at most this many rows is committed by the driver with delta-rs (its rows
# brought over as Arrow): a Spark replaceWhere costs 2-4 s of jobs and commit here even
# for a few rows, the driver's commit ~0.2 s. Larger chunks are written by Spark.
DRIVER_ROWS = 500_000
DEFAULT_CHUNK = timedelta(days=1)
# A chunk holds the whole days that together have about this many trades (at least one).
CHUNK_TRADES = 20_000_000


def chunks(view: View, start: datetime, end: datetime,
           chunk: timedelta = DEFAULT_CHUNK) -> list[tuple[datetime, datetime]]:
    """The commits a recompute of [start, end) makes: whole windows, `chunk` long at most."""
    lo, hi = align(view, start, end)
    width = timedelta(milliseconds=view.window_ms)
    step = max(chunk, width) // width * width
    out = []
    while lo < hi:
        out.append((lo, min(lo + step, hi)))
        lo = out[-1][1]
    return out


def trades_per_day(trades_uri: str) -> dict[date, int]:
    """raw.trades rows per trade_date, from the Delta log's file statistics (no scan)."""
    table = open_table(trades_uri)
    if table is None:
        return {}
    actions = pa.table(table.get_add_actions(flatten=True)).select(
        ["partition.trade_date", "num_records"]).to_pydict()
    per_day: dict[date, int] = {}
    for day, records in zip(actions["partition.trade_date"], actions["num_records"],
                            strict=True):
        if day is not None:
            per_day[day] = per_day.get(day, 0) + int(records or 0)
    return per_day


def plan(view: View, start: datetime, end: datetime, trades_uri: str,
         chunk: timedelta | None = None, max_trades: int = CHUNK_TRADES
         ) -> list[tuple[datetime, datetime]]:
    """The chunks (commits) a recompute of [start, end) makes: `chunk` long each, or,
    by default, whole days sized by the trades raw.trades holds for them."""
    if chunk is not None:
        return chunks(view, start, end, chunk)
    return sized_chunks(view, start, end, trades_per_day(trades_uri), max_trades)


def sized_chunks(view: View, start: datetime, end: datetime, per_day: dict[date, int],
                 max_trades: int = CHUNK_TRADES) -> list[tuple[datetime, datetime]]:
    """The day chunks of [start, end) joined while together they hold <= `max_trades`."""
    out: list[tuple[datetime, datetime]] = []
    held = 0
    for lo, hi in chunks(view, start, end, DEFAULT_CHUNK):
        trades = per_day.get(lo.date(), 0)
        if out and held + trades <= max_trades:
            out[-1] = (out[-1][0], hi)
            held += trades
        else:
            out.append((lo, hi))
            held = trades
    return out


@dataclass(frozen=True)
class Preview:
    """What a recompute would rewrite (`concord batch recompute --dry-run`)."""

    view: str
    start: datetime
    end: datetime
    chunks: int
    trades: int  # raw.trades rows it would read
    rows_now: int  # batch rows it would replace
    windows_now: int
    boundary: datetime | None  # windows at or after it are served from the speed layer


def preview(settings: Settings, view: View, start: datetime, end: datetime,
            chunk: timedelta | None = None) -> Preview:
    """Count what a recompute of [start, end) would read and replace; no engine, no write."""
    import pyarrow.dataset as ds

    trades_uri = settings.table_uri("raw", "trades")
    commits = plan(view, start, end, trades_uri, chunk)
    lo, hi = commits[0][0], commits[-1][1]

    def count(uri: str, where: ds.Expression) -> tuple[int, int]:
        table = open_table(uri)
        if table is None:
            return 0, 0
        data = table.to_pyarrow_dataset()
        if "window_start" not in data.schema.names:
            return data.count_rows(filter=where), 0
        starts = data.to_table(columns=["window_start"], filter=where).column("window_start")
        return len(starts), len(starts.unique())

    lo_ms, hi_ms = int(lo.timestamp() * 1000), int(hi.timestamp() * 1000)
    day = ds.field("trade_date")
    trades, _ = count(trades_uri,
                      (day >= lo.date()) & (day <= (hi - timedelta(milliseconds=1)).date())
                      & (ds.field("ts") >= lo_ms) & (ds.field("ts") < hi_ms))
    window = ds.field("window_start")
    rows, windows = count(settings.table_uri("batch", view.name), (window >= lo) & (window < hi))
    boundary = current_boundaries(settings).get(view.name)
    return Preview(view.name, lo, hi, len(commits), trades, rows, windows,
                   boundary[0] if boundary else None)


class Recompute:
    """Rebuilds windows of batch.<view> from raw.trades."""

    def __init__(self, settings: Settings, spark: SparkSession,
                 chunk: timedelta | None = None, max_trades: int = CHUNK_TRADES,
                 driver_rows: int = DRIVER_ROWS) -> None:
        """`chunk` fixes the chunks' length; by default they are sized by trades. Chunks
        of at most `driver_rows` rows are committed by the driver (0: never)."""
        self.settings = settings
        self.spark = spark
        self.chunk = chunk
        self.max_trades = max_trades
        self.driver_rows = driver_rows
        self.trades_uri = settings.table_uri("raw", "trades")
        self.exact_chunks = 0  # chunks that needed the exact compilation

    def plan(self, view: View, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """The chunks (commits) a recompute of [start, end) makes."""
        return plan(view, start, end, self.trades_uri, self.chunk, self.max_trades)

    def view_uri(self, view: View) -> str:
        return self.settings.table_uri("batch", view.name)

    def run(self, view: View, start: datetime, end: datetime,
            progress: Callable[[Chunk], None] | None = None) -> list[Chunk]:
        """Recompute every window of `view` overlapping [start, end); one commit per chunk."""
        if open_table(self.trades_uri) is None:
            raise RuntimeError(f"no raw.trades table at {self.trades_uri}: run "
                               "`concord batch ingest` first")
        done = []
        for lo, hi in self.plan(view, start, end):
            done.append(self._one(view, lo, hi))
            if progress is not None:
                progress(done[-1])
        return done

    def _one(self, view: View, start: datetime, end: datetime) -> Chunk:
        from pyspark.sql import functions as F

        t0 = time.monotonic()
        start_ms, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
        trades = (
            self.spark.read.format("delta").load(self.trades_uri)
            # trade_date prunes partitions; ts selects exactly.
            .where(F.col("trade_date").between(start.date(), (end - timedelta(milliseconds=1))
                                               .date()))
            .where((F.col("ts") >= start_ms) & (F.col("ts") < end_ms))
        )
        rows = partials(trades, view, fast=True).cache()
        try:
            stats = self._stats(rows, view)
            if stats["misfits"]:
                # Some trade the fast form cannot order or sum exactly: the exact one.
                self.exact_chunks += 1
                rows.unpersist()
                rows = partials(trades, view).withColumn(MISFITS, F.lit(0)).cache()
                stats = self._stats(rows, view)
            target = open_table(self.view_uri(view))
            if target is not None and stats["rows"] <= self.driver_rows:
                replace_windows(target, rows.drop(MISFITS).toArrow(), start, end, view)
            else:
                condition = f"window_start >= {_sql_ts(start)} AND window_start < {_sql_ts(end)}"
                (rows.drop(MISFITS).sortWithinPartitions(*cluster_order(view))
                 .write.format("delta").mode("overwrite")
                 .option("replaceWhere", condition)
                 .option("parquet.block.size", str(ROW_GROUP_BYTES))
                 .save(self.view_uri(view)))
        finally:
            rows.unpersist()
        return Chunk(start, end, int(stats["windows"]), int(stats["rows"]),
                     int(stats["trades"] or 0), time.monotonic() - t0)

    @staticmethod
    def _stats(rows: DataFrame, view: View) -> Row:
        from pyspark.sql import functions as F

        counted = any(m.name == "trade_count" for m in view.measures)
        stats = rows.agg(F.count(F.lit(1)).alias("rows"),
                         F.count_distinct("window_start").alias("windows"),
                         F.sum("trade_count" if counted else F.lit(0)).alias("trades"),
                         F.sum(MISFITS).alias("misfits")).first()
        assert stats is not None
        return stats
