"""`concord batch recompute`: raw.trades -> batch.<view> for a time range, idempotent.

The range is widened to whole windows of the view ([from, to) floored / ceiled to the
window), the view's partial rows are computed from raw.trades (batch_layer.spark_views,
the compiled declaration) and written with Delta's replaceWhere on window_start: one
atomic commit replaces exactly the windows of the range, so running it again, or after
a crash, leaves the same table. Windows of the range without trades end up with no
row (a recompute after trades were removed removes their rows).

Long ranges go in chunks (a day by default), each its own commit, with progress.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from batch_layer.spark_views import partials
from shared.bookkeeping import current_boundaries
from shared.config import Settings
from shared.tables import open_table
from shared.views import View

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


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


def _sql_ts(moment: datetime) -> str:
    return f"TIMESTAMP '{moment.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%S')}'"


DEFAULT_CHUNK = timedelta(days=1)


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
            chunk: timedelta = DEFAULT_CHUNK) -> Preview:
    """Count what a recompute of [start, end) would read and replace; no engine, no write."""
    import pyarrow.dataset as ds

    plan = chunks(view, start, end, chunk)
    lo, hi = plan[0][0], plan[-1][1]

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
    trades, _ = count(settings.table_uri("raw", "trades"),
                      (day >= lo.date()) & (day <= (hi - timedelta(milliseconds=1)).date())
                      & (ds.field("ts") >= lo_ms) & (ds.field("ts") < hi_ms))
    window = ds.field("window_start")
    rows, windows = count(settings.table_uri("batch", view.name), (window >= lo) & (window < hi))
    boundary = current_boundaries(settings).get(view.name)
    return Preview(view.name, lo, hi, len(plan), trades, rows, windows,
                   boundary[0] if boundary else None)


class Recompute:
    """Rebuilds windows of batch.<view> from raw.trades."""

    def __init__(self, settings: Settings, spark: SparkSession,
                 chunk: timedelta = DEFAULT_CHUNK) -> None:
        self.settings = settings
        self.spark = spark
        self.chunk = chunk
        self.trades_uri = settings.table_uri("raw", "trades")

    def view_uri(self, view: View) -> str:
        return self.settings.table_uri("batch", view.name)

    def run(self, view: View, start: datetime, end: datetime,
            progress: Callable[[Chunk], None] | None = None) -> list[Chunk]:
        """Recompute every window of `view` overlapping [start, end); one commit per chunk."""
        from delta.tables import DeltaTable

        if not DeltaTable.isDeltaTable(self.spark, self.trades_uri):
            raise RuntimeError(f"no raw.trades table at {self.trades_uri}: run "
                               "`concord batch ingest` first")
        done = []
        for lo, hi in chunks(view, start, end, self.chunk):
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
        rows = partials(trades, view).cache()
        try:
            stats = rows.agg(F.count(F.lit(1)).alias("rows"),
                             F.count_distinct("window_start").alias("windows"),
                             F.sum("trade_count" if any(m.name == "trade_count"
                                                        for m in view.measures) else F.lit(0))
                             .alias("trades")).first()
            assert stats is not None
            condition = (f"window_start >= {_sql_ts(start)} AND window_start < {_sql_ts(end)}")
            (rows.write.format("delta").mode("overwrite").option("replaceWhere", condition)
             .save(self.view_uri(view)))
        finally:
            rows.unpersist()
        return Chunk(start, end, int(stats["windows"]), int(stats["rows"]),
                     int(stats["trades"] or 0), time.monotonic() - t0)
