"""`concord batch run`: ingest, recompute exactly the windows new trades touched, publish.

1. ingest (batch_layer.ingest): Kafka -> raw.trades / raw.rejects, exactly once;
2. per view, the new boundary is chosen: the window holding the newest ingested trade
   minus the lateness allowance, never backwards;
3. the windows below the new boundary that need (re)computing are recomputed
   (batch_layer.recompute), contiguous windows as one range: those touched by trades
   of ingest runs not yet recomputed for the view (raw.trades.ingest_run > the run id
   of its last boundary row), and every window between the old and the new boundary;
4. the boundary is published in meta.boundaries (one appended row);
5. the speed tables are maintained (shared.maintenance): small files compacted,
   speed rows of windows before the *previous* boundary and older than the retention
   deleted, unreferenced files vacuumed.

The batch view holds windows below its boundary only. That is what makes the serving
view (serving_layer.trino_views) consistent for a reader whose query sees the tables
at slightly different moments: whatever batch snapshot it pairs with whatever
boundary, a window below the boundary is either complete in that snapshot or absent
from it (then served from the speed rows, kept back to the previous boundary).

Crash safety: the boundary row records the last ingest run recomputed; a run killed
before publishing leaves it unchanged, so the next run recomputes the same windows
again (recompute is idempotent) and publishes then.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from batch_layer.ingest import Ingest, IngestRun
from batch_layer.recompute import Chunk, Recompute
from shared.bookkeeping import (
    boundary_history,
    current_boundaries,
    keep_from,
    publish_boundaries,
)
from shared.config import Settings
from shared.maintenance import Maintained, maintain
from shared.tables import open_table
from shared.views import VIEWS, View

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@dataclass
class ViewResult:
    view: str
    ranges: list[tuple[datetime, datetime]] = field(default_factory=list)
    windows: int = 0
    boundary: datetime | None = None
    previous: datetime | None = None


@dataclass
class BatchRunResult:
    ingest: list[IngestRun]
    views: list[ViewResult]
    maintained: list[Maintained] = field(default_factory=list)


def contiguous(starts: list[int], width: int) -> list[tuple[int, int]]:
    """Sorted window starts (ms) -> [start, end) ranges of adjacent windows."""
    ranges: list[tuple[int, int]] = []
    for s in sorted(set(starts)):
        if ranges and ranges[-1][1] == s:
            ranges[-1] = (ranges[-1][0], s + width)
        else:
            ranges.append((s, s + width))
    return ranges


def merge_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """[start, end) ranges -> sorted, with overlapping or adjacent ones joined."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def repeat(once: Callable[[], object], every_s: float | None, *,
           on_pause: Callable[[float], None] = lambda seconds: None,
           until: Callable[[], bool] = lambda: False,
           sleep: Callable[[float], None] = time.sleep,
           clock: Callable[[], float] = time.monotonic) -> None:
    """`once()`, and with `every_s` again every `every_s` seconds from the start of one run
    to the start of the next (a run that took longer is followed at once), until `until()`
    is true or the process is stopped. `on_pause(seconds)` is told each wait."""
    while True:
        started = clock()
        once()
        if not every_s or until():
            return
        pause = max(0.0, every_s - (clock() - started))
        on_pause(pause)
        sleep(pause)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


class BatchRun:
    def __init__(self, settings: Settings, spark: SparkSession, *, topic: str | None = None,
                 lateness_s: int | None = None, views: list[View] | None = None) -> None:
        self.settings = settings
        self.spark = spark
        self.topic = topic
        self.lateness_ms = 1000 * (settings.batch_lateness_s if lateness_s is None
                                   else lateness_s)
        self.views = views or list(VIEWS.values())

    def history(self) -> dict[str, list[tuple[datetime, int]]]:
        """view -> its (boundary, last ingest run recomputed) rows, oldest first."""
        return boundary_history(self.settings)

    def current(self) -> dict[str, tuple[datetime, int]]:
        """view -> (boundary, last ingest run recomputed), from meta.boundaries."""
        return current_boundaries(self.settings)

    def maintain_speed(self) -> list[Maintained]:
        """Delete speed rows no longer needed, compact, vacuum (shared.maintenance)."""
        history = self.history()
        done = []
        for view in self.views:
            keep = keep_from([b for b, _ in history.get(view.name, [])],
                             self.settings.speed_retention_s)
            result = maintain(self.settings.table_uri("speed", view.name), keep_from=keep,
                              name=f"speed.{view.name}")
            if result is not None:
                done.append(result)
        rejects = maintain(self.settings.table_uri("speed", "contract_rejects"),
                           keep_from=None, name="speed.contract_rejects")
        return [*done, *([rejects] if rejects else [])]

    def run(self, *, on_ingest: Callable[[IngestRun], None] | None = None,
            on_chunk: Callable[[Chunk], None] | None = None) -> BatchRunResult:
        from pyspark.sql import functions as F

        runs = Ingest(self.settings, self.spark, topic=self.topic).run(progress=on_ingest)
        if runs and not all(r.balanced for r in runs):
            raise RuntimeError("ingest counts do not add up (accepted + rejected != consumed); "
                               "not recomputing: see the per-partition counts above")
        trades_uri = self.settings.table_uri("raw", "trades")
        raw = open_table(trades_uri)
        if raw is None:
            return BatchRunResult(runs, [])
        raw_version = raw.version()
        trades = self.spark.read.format("delta").load(trades_uri)
        # Over all of raw.trades, once: the last ingest run and the newest trade.
        latest = trades.agg(F.max("ingest_run").alias("run"), F.max("ts").alias("ts")).first()
        assert latest is not None
        newest_run = int(latest["run"]) if latest["run"] is not None else 0
        current = self.current()
        recompute = Recompute(self.settings, self.spark)
        results, published = [], []
        for view in self.views:
            result = ViewResult(view.name)
            boundary, done_run = current.get(view.name, (None, 0))
            result.previous = boundary
            width = view.window_ms
            previous_ms = _ms(boundary) if boundary is not None else None
            candidate = (int(latest["ts"]) - self.lateness_ms) // width * width
            new_ms = max(candidate, previous_ms or 0)
            new = trades.where((F.col("ingest_run") > done_run) & (F.col("ts") < new_ms))
            starts = [r[0] for r in new.select((F.col("ts") - F.pmod("ts", F.lit(width)))
                                               .alias("w")).distinct().collect()]
            ranges = contiguous(starts, width)
            if previous_ms is not None and previous_ms < new_ms:
                ranges = merge_ranges([*ranges, (previous_ms, new_ms)])
            if not ranges and done_run == newest_run:
                results.append(result)
                continue
            for lo, hi in ranges:
                chunks = recompute.run(view, _utc(lo), _utc(hi), progress=on_chunk)
                result.windows += sum(c.windows for c in chunks)
                result.ranges.append((_utc(lo), _utc(hi)))
            result.boundary = _utc(new_ms)
            published.append({"view_name": view.name, "boundary": result.boundary,
                              "run_id": newest_run, "raw_version": raw_version,
                              "published_at": datetime.now(UTC)})
            results.append(result)
        if published:
            publish_boundaries(self.settings, published)
        return BatchRunResult(runs, results, self.maintain_speed())
