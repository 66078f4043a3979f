"""`concord batch run`: ingest, recompute exactly the windows new trades touched, publish.

1. ingest (batch_layer.ingest): Kafka -> raw.trades / raw.rejects, exactly once;
2. per view, the windows touched by trades of ingest runs not yet recomputed for it
   (raw.trades.ingest_run > the run id of the view's last boundary row) are
   recomputed (batch_layer.recompute), contiguous windows as one range;
3. the view's boundary is advanced in meta.boundaries: to the window holding the
   newest ingested trade minus the lateness allowance, never backwards, and never
   past what the batch view covers (everything ingested so far).

Crash safety: the boundary row records the last ingest run recomputed; a run killed
before publishing leaves it unchanged, so the next run recomputes the same windows
again (recompute is idempotent) and publishes then.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pyarrow as pa

from batch_layer.ingest import Ingest, IngestRun
from batch_layer.recompute import Chunk, Recompute
from shared.config import Settings
from shared.tables import BOUNDARIES, arrow_schema, ensure_table
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


def contiguous(starts: list[int], width: int) -> list[tuple[int, int]]:
    """Sorted window starts (ms) -> [start, end) ranges of adjacent windows."""
    ranges: list[tuple[int, int]] = []
    for s in sorted(set(starts)):
        if ranges and ranges[-1][1] == s:
            ranges[-1] = (ranges[-1][0], s + width)
        else:
            ranges.append((s, s + width))
    return ranges


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
        self.boundaries_uri = settings.table_uri("meta", "boundaries")

    def current(self) -> dict[str, tuple[datetime, int]]:
        """view -> (boundary, last ingest run recomputed), from meta.boundaries."""
        from deltalake import DeltaTable

        if not DeltaTable.is_deltatable(self.boundaries_uri):
            return {}
        rows = DeltaTable(self.boundaries_uri).to_pyarrow_table().to_pylist()
        out: dict[str, tuple[datetime, int]] = {}
        for r in sorted(rows, key=lambda r: r["run_id"]):
            out[r["view_name"]] = (r["boundary"], r["run_id"])
        return out

    def run(self, *, on_ingest: Callable[[IngestRun], None] | None = None,
            on_chunk: Callable[[Chunk], None] | None = None) -> BatchRunResult:
        from deltalake import DeltaTable, write_deltalake
        from pyspark.sql import functions as F  # noqa: N812

        runs = Ingest(self.settings, self.spark, topic=self.topic).run(progress=on_ingest)
        if runs and not all(r.balanced for r in runs):
            raise RuntimeError("ingest counts do not add up (accepted + rejected != consumed); "
                               "not recomputing: see the per-partition counts above")
        trades_uri = self.settings.table_uri("raw", "trades")
        if not DeltaTable.is_deltatable(trades_uri):
            return BatchRunResult(runs, [])
        raw = DeltaTable(trades_uri)
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
            new = trades.where(F.col("ingest_run") > done_run)
            width = view.window_ms
            stats = new.agg(F.max("ts").alias("newest")).first()
            if stats is None or stats["newest"] is None:
                results.append(result)
                continue
            starts = [r[0] for r in new.select((F.col("ts") - F.pmod("ts", F.lit(width)))
                                               .alias("w")).distinct().collect()]
            for lo, hi in contiguous(starts, width):
                recompute.run(view, _utc(lo), _utc(hi), progress=on_chunk)
                result.ranges.append((_utc(lo), _utc(hi)))
            result.windows = len(starts)
            candidate = (int(latest["ts"]) - self.lateness_ms) // width * width
            previous_ms = _ms(boundary) if boundary is not None else 0
            result.boundary = _utc(max(candidate, previous_ms))
            published.append({"view_name": view.name, "boundary": result.boundary,
                              "run_id": newest_run, "raw_version": raw_version,
                              "published_at": datetime.now(UTC)})
            results.append(result)
        if published:
            ensure_table(self.boundaries_uri, BOUNDARIES)
            write_deltalake(self.boundaries_uri,
                            pa.Table.from_pylist(published, schema=arrow_schema(BOUNDARIES)),
                            mode="append")
        return BatchRunResult(runs, results)
