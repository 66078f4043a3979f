"""`concord batch ingest | run | recompute`: the batch layer."""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from shared.config import Settings
from shared.views import VIEWS

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from batch_layer.ingest import IngestRun
    from batch_layer.recompute import Chunk


def _spark(settings: Settings, app: str) -> SparkSession:
    """The command's Spark session, started at CONCORD_BATCH_NICE: on a shared box the
    speed job (the desk's freshness) comes first."""
    from infra.engines import spark_session
    from infra.processes import lower_priority

    lower_priority(settings.batch_nice)
    return spark_session(settings, app)


def cmd_batch_ingest(settings: Settings, args: argparse.Namespace) -> int:
    from batch_layer.ingest import Ingest

    spark = _spark(settings, "concord-ingest")
    limit = {"max_records_per_partition": args.max_per_partition} if args.max_per_partition else {}
    ingest = Ingest(settings, spark, topic=args.topic, **limit)

    def progress(run: IngestRun) -> None:
        print(f"ingest run {run.run_id}{' (redo of an interrupted run)' if run.redo else ''}: "
              f"{run.records:,} messages in {run.seconds:.1f}s "
              f"({run.records / max(run.seconds, 1e-9):,.0f} msg/s; "
              + ", ".join(f"{k} {v:.1f}s" for k, v in run.phases.items()) + ")")
        for p, c in sorted(run.partitions.items()):
            flag = "" if c.balanced else "   <-- MISMATCH"
            print(f"  partition {p}: offsets {c.start}..{c.end}  consumed {c.records:,}  "
                  f"accepted {c.accepted:,}  rejected {c.rejected:,} "
                  f"(duplicates {c.duplicates:,}){flag}")

    try:
        runs = ingest.run(progress=progress)
    finally:
        spark.stop()
    if not runs:
        print(f"ingest: nothing new on topic {ingest.topic}")
        return 0
    if not all(r.balanced for r in runs):
        print("ingest: accepted + rejected != consumed for some partition", file=sys.stderr)
        return 1
    total = sum(r.records for r in runs)
    print(f"ingest: {total:,} messages in {len(runs)} run(s); lake.raw.trades and "
          "lake.raw.rejects are up to date (`concord serve refresh` makes them visible)")
    return 0


def cmd_batch_run(settings: Settings, args: argparse.Namespace) -> int:
    from batch_layer.run import repeat
    from shared.runstate import BATCH_RUN, read_state, write_state

    spark = _spark(settings, "concord-batch-run")
    # A loop leaves its period and its last run's outcome for `concord status` and the
    # exporter (shared.runstate); a single run leaves the ingest ledger only.
    state: dict[str, object] = {"pid": os.getpid(), "every_s": args.every}
    if args.every:
        previous = read_state(settings, BATCH_RUN) or {}
        state.update({k: previous.get(k) for k in ("finished_at", "duration_s", "ok", "error",
                                                   "phases")})
        write_state(settings, BATCH_RUN, state)

    def once() -> None:
        began = time.time()
        if args.every:
            write_state(settings, BATCH_RUN, {**state, "started_at": began})
        try:
            phases = _batch_run_once(settings, spark, args.topic)
            state.update(ok=True, error=None,
                         phases={k: round(v, 2) for k, v in phases.items()})
        except Exception as exc:
            state.update(ok=False, error=_first_line(exc), phases={})
            raise
        finally:
            state.update(started_at=began, finished_at=time.time(),
                         duration_s=round(time.time() - began, 1))
            if args.every:
                write_state(settings, BATCH_RUN, state)

    try:
        repeat(once, args.every,
               on_pause=lambda s: print(f"batch run: next run in {s:.0f}s", flush=True),
               on_error=lambda exc: print(f"batch run: failed ({_first_line(exc)}); the next run "
                                          "takes up what it left", flush=True))
    finally:
        spark.stop()
    return 0


def _first_line(exc: Exception) -> str:
    from shared.errors import first_line

    return f"{type(exc).__name__}: {first_line(exc)}"[:300]


def _batch_run_once(settings: Settings, spark: SparkSession, topic: str | None
                    ) -> dict[str, float]:
    """One batch run, printed as it goes; the seconds of each of its phases."""
    from batch_layer.run import BatchRun

    def ingested(run: IngestRun) -> None:
        print(f"ingest run {run.run_id}: {run.records:,} messages in {run.seconds:.1f}s, "
              f"{sum(c.accepted for c in run.partitions.values()):,} accepted, "
              f"{sum(c.rejected for c in run.partitions.values()):,} rejected", flush=True)

    def recomputed(chunk: Chunk) -> None:
        print(f"  recompute {chunk.start:%Y-%m-%d %H:%M} .. {chunk.end:%H:%M}: "
              f"{chunk.windows:,} windows from {chunk.trades:,} trades", flush=True)

    def phase(name: str) -> None:
        print({"publish": "batch run: publishing the boundaries",
               "maintain": "batch run: maintaining the speed tables"}[name], flush=True)

    began = time.monotonic()
    print(f"batch run: {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC", flush=True)
    result = BatchRun(settings, spark, topic=topic).run(on_ingest=ingested,
                                                        on_chunk=recomputed, on_phase=phase)
    if not result.ingest:
        print("batch run: nothing new in Kafka")
    for v in result.views:
        if v.boundary is None:
            print(f"batch run: {v.view}: nothing to recompute")
            continue
        if v.boundary == v.previous:
            moved = "unchanged"
        else:
            before = f"{v.previous:%Y-%m-%d %H:%M:%S}" if v.previous else "none"
            moved = f"{before} -> {v.boundary:%Y-%m-%d %H:%M:%S} UTC"
        print(f"batch run: {v.view}: {v.windows:,} windows recomputed in {len(v.ranges)} "
              f"range(s); boundary {moved}")
    for m in result.maintained:
        print(f"batch run: {m.table}: {m.files_before:,} -> {m.files_after:,} files, "
              f"{m.rows_deleted:,} rows before the retention deleted, "
              f"{m.files_vacuumed:,} old files vacuumed", flush=True)
    print(f"batch run: done in {time.monotonic() - began:.1f}s", flush=True)
    return result.phases


def cmd_batch_recompute(settings: Settings, args: argparse.Namespace) -> int:
    from batch_layer.recompute import Recompute, align, preview

    views = [VIEWS[args.view]] if args.view else list(VIEWS.values())
    if args.dry_run:
        for view in views:
            p = preview(settings, view, args.from_, args.to)
            print(f"recompute {view.name} (dry run): {p.start:%Y-%m-%d %H:%M:%S} .. "
                  f"{p.end:%Y-%m-%d %H:%M:%S} UTC in {p.chunks} commit(s) would read "
                  f"{p.trades:,} trades from lake.raw.trades and replace {p.rows_now:,} rows "
                  f"({p.windows_now:,} windows) of lake.batch.{view.name}")
            if p.boundary is None:
                print("  no boundary published yet: the serving view shows speed rows only")
            elif p.end > p.boundary:
                print(f"  windows from the boundary {p.boundary:%Y-%m-%d %H:%M:%S} UTC on are "
                      "served from the speed layer until a batch run moves it past them")
        return 0
    spark = _spark(settings, "concord-recompute")
    job = Recompute(settings, spark)
    try:
        for view in views:
            lo, hi = align(view, args.from_, args.to)
            total = len(job.plan(view, lo, hi))
            done = itertools.count(1)

            def progress(chunk: Chunk, name: str = view.name, total: int = total,
                         done: Iterator[int] = done) -> None:
                print(f"  {name} [{next(done)}/{total}] {chunk.start:%Y-%m-%d %H:%M} .. "
                      f"{chunk.end:%Y-%m-%d %H:%M}: {chunk.windows:,} windows, "
                      f"{chunk.rows:,} rows from {chunk.trades:,} trades in "
                      f"{chunk.seconds:.1f}s", flush=True)

            print(f"recompute {view.name}: {lo:%Y-%m-%d %H:%M:%S} .. {hi:%Y-%m-%d %H:%M:%S} UTC "
                  f"(widened to whole {view.window_seconds}s windows)", flush=True)
            written = job.run(view, lo, hi, progress=progress)
            print(f"recompute {view.name}: {sum(c.windows for c in written):,} windows, "
                  f"{sum(c.rows for c in written):,} rows written to lake.batch.{view.name} "
                  f"from {sum(c.trades for c in written):,} trades")
    finally:
        spark.stop()
    return 0
