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
   deleted, unreferenced files vacuumed; the bookkeeping tables (meta.boundaries,
   meta.ingest_runs: one small append per run) compacted every few runs.

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

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from batch_layer.ingest import Ingest, IngestRun
from batch_layer.recompute import Chunk, Recompute
from shared.bookkeeping import (
    boundary_history,
    current_boundaries,
    keep_from,
    publish_boundaries,
)
from shared.config import Settings
from shared.maintenance import Maintained, maintain, tidy
from shared.tables import open_table
from shared.views import VIEWS, View

if TYPE_CHECKING:
    from deltalake import DeltaTable
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
    # Wall seconds per step: ingest, plan (boundaries, touched windows), recompute,
    # publish, maintain.
    phases: dict[str, float] = field(default_factory=dict)


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
           on_error: Callable[[Exception], None] | None = None,
           until: Callable[[], bool] = lambda: False,
           sleep: Callable[[float], None] = time.sleep,
           clock: Callable[[], float] = time.monotonic) -> None:
    """`once()`, and with `every_s` again every `every_s` seconds from the start of one run
    to the start of the next (a run that took longer is followed at once), until `until()`
    is true or the process is stopped. `on_pause(seconds)` is told each wait.

    A run that raises ends a single run. In a loop with `on_error`, it is told the error
    and the loop goes on (a broker or a server down for a while must not end the loop:
    every run is idempotent and the next one takes up what this one left)."""
    while True:
        started = clock()
        try:
            once()
        except Exception as exc:
            if not every_s or on_error is None:
                raise
            on_error(exc)
        if not every_s or until():
            return
        pause = max(0.0, every_s - (clock() - started))
        on_pause(pause)
        sleep(pause)


Column = npt.NDArray[np.int64]


def new_trades(raw: DeltaTable, after_run: int, grain_ms: int
               ) -> tuple[int, int, dict[str, Column]]:
    """(newest ingest run, newest ts, the distinct (ts floored to `grain_ms`, ingest_run)
    of the rows of runs after `after_run`) of raw.trades. Newest figures from the Delta
    log's file statistics; the rows from the files whose statistics say they hold such
    runs, a batch at a time (a long backlog is a few distinct pairs per grain, not a
    column of every trade in memory)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    stats = pa.table(raw.get_add_actions(flatten=True))
    names = set(stats.column_names)
    newest = {}
    for column in ("ts", "ingest_run"):
        top = stats.column(f"max.{column}") if f"max.{column}" in names else None
        if top is None or top.null_count:
            # A file without statistics: scan the column.
            top = raw.to_pyarrow_dataset().to_table(columns=[column]).column(column)
        newest[column] = int(pc.max(top).as_py() or 0)
    pairs = [np.empty((0, 2), dtype=np.int64)]
    for batch in raw.to_pyarrow_dataset().to_batches(
            columns=["ts", "ingest_run"], filter=ds.field("ingest_run") > after_run):
        ts = batch.column("ts").to_numpy(zero_copy_only=False)
        runs = batch.column("ingest_run").to_numpy(zero_copy_only=False)
        pairs.append(np.unique(np.column_stack((ts // grain_ms * grain_ms, runs)), axis=0))
    distinct = np.unique(np.concatenate(pairs), axis=0)
    return newest["ingest_run"], newest["ts"], {"ts": distinct[:, 0],
                                                "ingest_run": distinct[:, 1]}


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
        """Delete speed rows no longer needed, compact, vacuum; compact the bookkeeping
        tables every few runs (shared.maintenance)."""
        history = self.history()
        # The speed job compacts its tables itself (CONCORD_SPEED_COMPACT_EVERY_S): a
        # second, concurrent compaction would duplicate their rows (shared.maintenance).
        own_compaction = self.settings.speed_compact_every_s == 0
        done = []
        for view in self.views:
            keep = keep_from([b for b, _ in history.get(view.name, [])],
                             self.settings.speed_retention_s)
            result = maintain(self.settings.table_uri("speed", view.name), keep_from=keep,
                              compact_files=own_compaction,
                              name=f"speed.{view.name}")
            if result is not None:
                done.append(result)
        rejects = maintain(self.settings.table_uri("speed", "contract_rejects"),
                           compact_files=own_compaction,
                           keep_from=None, name="speed.contract_rejects")
        bookkeeping = [tidy(self.settings.table_uri("meta", table), name=f"meta.{table}")
                       for table in ("boundaries", "ingest_runs")]
        return [*done, *([rejects] if rejects else []), *(b for b in bookkeeping if b)]

    def run(self, *, on_ingest: Callable[[IngestRun], None] | None = None,
            on_chunk: Callable[[Chunk], None] | None = None,
            on_phase: Callable[[str], None] | None = None) -> BatchRunResult:
        """Ingest, recompute what the new trades touched, publish the boundaries, maintain
        the speed tables; `on_phase` hears "publish" and "maintain" as they begin."""
        t0 = time.monotonic()
        phases: dict[str, float] = {}

        def lap(name: str) -> None:
            phases[name] = phases.get(name, 0.0) + time.monotonic() - t0 - sum(phases.values())

        runs = Ingest(self.settings, self.spark, topic=self.topic).run(progress=on_ingest)
        if runs and not all(r.balanced for r in runs):
            raise RuntimeError("ingest counts do not add up (accepted + rejected != consumed); "
                               "not recomputing: see the per-partition counts above")
        trades_uri = self.settings.table_uri("raw", "trades")
        raw = open_table(trades_uri)
        lap("ingest")
        if raw is None:
            return BatchRunResult(runs, [], phases=phases)
        raw_version = raw.version()
        current = self.current()
        # The trades of ingest runs some view has not recomputed yet (files pruned by
        # the Delta log's statistics; a quiet run reads one small file).
        newest_run, newest_ts, new = new_trades(
            raw, min((current.get(v.name, (None, 0))[1] for v in self.views), default=0),
            math.gcd(*(v.window_ms for v in self.views)))
        recompute = Recompute(self.settings, self.spark)
        results, published = [], []
        for view in self.views:
            result = ViewResult(view.name)
            boundary, done_run = current.get(view.name, (None, 0))
            result.previous = boundary
            width = view.window_ms
            previous_ms = _ms(boundary) if boundary is not None else None
            candidate = (newest_ts - self.lateness_ms) // width * width
            new_ms = max(candidate, previous_ms or 0)
            ts = new["ts"][(new["ingest_run"] > done_run) & (new["ts"] < new_ms)]
            ranges = contiguous((np.unique(ts // width) * width).tolist(), width)
            if previous_ms is not None and previous_ms < new_ms:
                ranges = merge_ranges([*ranges, (previous_ms, new_ms)])
            if not ranges and done_run == newest_run:
                results.append(result)
                continue
            lap("plan")
            for lo, hi in ranges:
                chunks = recompute.run(view, _utc(lo), _utc(hi), progress=on_chunk)
                result.windows += sum(c.windows for c in chunks)
                result.ranges.append((_utc(lo), _utc(hi)))
            result.boundary = _utc(new_ms)
            published.append({"view_name": view.name, "boundary": result.boundary,
                              "run_id": newest_run, "raw_version": raw_version,
                              "published_at": datetime.now(UTC)})
            results.append(result)
            lap("recompute")
        lap("plan")
        if published:
            if on_phase is not None:
                on_phase("publish")
            publish_boundaries(self.settings, published)
        lap("publish")
        if on_phase is not None:
            on_phase("maintain")
        maintained = self.maintain_speed()
        lap("maintain")
        return BatchRunResult(runs, results, maintained, phases)
