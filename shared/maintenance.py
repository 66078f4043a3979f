"""Upkeep of the speed tables (lake.speed.*): the speed job compacts them as it goes,
`concord batch run` trims, compacts and vacuums them after it publishes.

The speed job's committers append a small commit every checkpoint (1 s by default):
left alone, a speed table grows by thousands of files and log entries an hour. Each
maintenance pass, per table:
1. deletes the rows of windows before `keep_from` (speed rows are kept back to the
   boundary, never less: the caller passes shared.bookkeeping.keep_from, the older of
   the previous boundary and the boundary minus the retention);
2. compacts the remaining small files into few large ones (a rewrite: same rows);
3. vacuums files no version of the last VACUUM_HOURS references (readers that
   started on an older snapshot still find their files), checkpoints the log and
   drops log entries older than the table's log retention.

The bookkeeping tables (meta.boundaries, meta.ingest_runs) get one small append per
batch run; `tidy` compacts them (all rows kept) so that a serving query, which reads
the boundary, does not open one file per batch run ever made.

Only one process compacts a table: the speed job compacts its tables as it runs, so
`batch run` then only deletes, vacuums and checkpoints them (`maintain(compact_files=
False)`): two concurrent compactions of one table duplicate its rows (see `maintain`).

All of it goes through Delta commits that a concurrent committer's appends do not
conflict with (blind appends), and keeps the committers' `txn` versions (they live on
in the checkpoint), so the speed job runs on undisturbed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from shared.tables import open_table

VACUUM_HOURS = 1
LOG_RETENTION = "interval 1 hours"
TIDY_MIN_FILES = 8
TIDY_VACUUM_HOURS = 7 * 24  # Delta's default: readers of old versions keep their files


@dataclass(frozen=True)
class Maintained:
    table: str
    files_before: int
    files_after: int
    rows_deleted: int
    files_vacuumed: int


def compact(uri: str, min_files: int = 2) -> tuple[int, int] | None:
    """Rewrite the table's small files into few (same rows) when it has `min_files` or
    more; (files before, files after), None when nothing was done. The speed job runs
    this every CONCORD_SPEED_COMPACT_EVERY_S between its commits: queries of the
    serving views plan per file, so a few minutes of 1 s commits slow them (BENCHMARKS)."""
    from deltalake import DeltaTable

    table = open_table(uri)
    if table is None:
        return None
    before = len(table.file_uris())
    if before < min_files:
        return None
    table.optimize.compact()
    return before, len(DeltaTable(uri).file_uris())


def maintain(uri: str, *, keep_from: datetime | None, name: str = "",
             compact_files: bool = True) -> Maintained | None:
    """Delete rows before `keep_from` (None: delete nothing), compact (unless told not
    to), vacuum; None if no table.

    Never compact a table another process may be compacting at the same moment: two
    concurrent delta-rs (1.6.6) compactions of one table both commit, each adding its
    rewrite of the same rows, and every row is then there twice (found by bench.faults:
    speed rows counted 2-8 times; a 30 s script with an appender and two compacting
    threads turned 13,000 rows into 155 million). A compaction beside appends and a
    delete is safe (tests/unit/shared/test_maintenance.py). The speed
    job compacts its own tables; `batch run` passes `compact_files=False` for them then."""
    from deltalake import DeltaTable

    table = open_table(uri)
    if table is None:
        return None
    if table.metadata().configuration.get("delta.logRetentionDuration") != LOG_RETENTION:
        table.alter.set_table_properties({"delta.logRetentionDuration": LOG_RETENTION})
    before = len(table.file_uris())
    deleted = 0
    if keep_from is not None:
        moment = keep_from.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        deleted = int(table.delete(f"window_start < '{moment}'")["num_deleted_rows"])
        table = DeltaTable(uri)
    if compact_files and len(table.file_uris()) > 1:
        table.optimize.compact()
        table = DeltaTable(uri)
    vacuumed = table.vacuum(retention_hours=VACUUM_HOURS, dry_run=False,
                            enforce_retention_duration=False)
    table.create_checkpoint()
    table.cleanup_metadata()
    return Maintained(name or uri, before, len(DeltaTable(uri).file_uris()), deleted,
                      len(vacuumed))


def tidy(uri: str, *, min_files: int = TIDY_MIN_FILES, name: str = "") -> Maintained | None:
    """A table whose rows all stay (bookkeeping): compacted when it has `min_files` or
    more files, checkpointed, files older than a week and unreferenced vacuumed; None
    when there is no table or nothing to do."""
    from deltalake import DeltaTable

    done = compact(uri, min_files)
    if done is None:
        return None
    table = DeltaTable(uri)
    vacuumed = table.vacuum(retention_hours=TIDY_VACUUM_HOURS, dry_run=False)
    table.create_checkpoint()
    return Maintained(name or uri, *done, 0, len(vacuumed))
