"""shared.maintenance and shared.bookkeeping.keep_from on local Delta tables (delta-rs only)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import CommitFailedError

from shared.bookkeeping import keep_from
from shared.maintenance import compact, maintain, tidy

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _append(uri: str, minute: int, offset: int) -> None:
    rows = pa.table({
        "window_start": pa.array([T0 + timedelta(minutes=minute)] * 2,
                                 pa.timestamp("us", tz="UTC")),
        "trade_count": pa.array([1, 2], pa.int64()),
    })
    txn = Transaction("concord-speed/bars_1m/0", offset, int(time.time() * 1000))
    write_deltalake(uri, rows, mode="append",
                    commit_properties=CommitProperties(app_transactions=[txn]))


def test_deletes_before_keep_from_compacts_and_keeps_committer_offsets(tmp_path: Path) -> None:
    uri = str(tmp_path / "speed")
    for i in range(20):
        _append(uri, i, offset=100 + i)

    done = maintain(uri, keep_from=T0 + timedelta(minutes=5), name="speed.t")

    assert done is not None
    assert (done.files_before, done.files_after, done.rows_deleted) == (20, 1, 10)
    table = DeltaTable(uri)
    kept = table.to_pyarrow_table()
    assert kept.num_rows == 30
    assert min(kept.column("window_start").to_pylist()) == T0 + timedelta(minutes=5)
    # the committer resumes from the offset it wrote last, checkpoint or not
    assert table.transaction_version("concord-speed/bars_1m/0") == 119
    # appends go on after maintenance
    _append(uri, 30, offset=120)
    assert DeltaTable(uri).to_pyarrow_table().num_rows == 32


def test_keep_from_none_deletes_nothing_and_a_missing_table_is_skipped(tmp_path: Path) -> None:
    uri = str(tmp_path / "speed")
    for i in range(3):
        _append(uri, i, offset=i)
    done = maintain(uri, keep_from=None)
    assert done is not None and done.rows_deleted == 0
    assert DeltaTable(uri).to_pyarrow_table().num_rows == 6
    assert maintain(str(tmp_path / "none"), keep_from=None) is None


def test_speed_rows_are_kept_back_to_the_previous_boundary_at_least() -> None:
    def keep_speed_from(boundaries: list[datetime]) -> datetime | None:
        return keep_from(boundaries, retention_s=600)

    t = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert keep_speed_from([]) is None
    assert keep_speed_from([t, t]) is None  # one boundary so far: keep everything
    # boundary moved 2 minutes: the retention (10 min) reaches further back
    assert keep_speed_from([t, t + timedelta(minutes=2)]) == t - timedelta(minutes=8)
    # boundary moved an hour: keep back to the previous boundary
    late = t + timedelta(hours=1)
    assert keep_speed_from([t, late, late]) == t


def test_compact_rewrites_small_files_and_keeps_rows_and_offsets(tmp_path: Path) -> None:
    uri = str(tmp_path / "speed")
    assert compact(uri) is None  # no table yet
    for i in range(10):
        _append(uri, i, offset=200 + i)
    rows = sorted(DeltaTable(uri).to_pyarrow_table().to_pylist(), key=str)

    assert compact(uri, min_files=11) is None  # below the threshold: untouched
    assert compact(uri, min_files=8) == (10, 1)

    table = DeltaTable(uri)
    assert sorted(table.to_pyarrow_table().to_pylist(), key=str) == rows
    assert table.transaction_version("concord-speed/bars_1m/0") == 209


def test_tidy_compacts_a_bookkeeping_table_keeping_every_row_and_transaction(
        tmp_path: Path) -> None:
    uri = str(tmp_path / "boundaries")
    assert tidy(uri) is None  # no table yet
    for i in range(7):
        _append(uri, i, offset=300 + i)
    assert tidy(uri) is None  # fewer files than TIDY_MIN_FILES: untouched
    _append(uri, 7, offset=307)
    rows = sorted(DeltaTable(uri).to_pyarrow_table().to_pylist(), key=str)

    done = tidy(uri, name="meta.boundaries")

    assert done is not None
    assert (done.table, done.files_before, done.files_after, done.rows_deleted) == (
        "meta.boundaries", 8, 1, 0)
    table = DeltaTable(uri)
    assert sorted(table.to_pyarrow_table().to_pylist(), key=str) == rows
    assert table.transaction_version("concord-speed/bars_1m/0") == 307
    # the rewritten files are younger than the vacuum's week: still on disk for old readers
    assert done.files_vacuumed == 0
    assert len(list((tmp_path / "boundaries").glob("*.parquet"))) == 9


def test_the_speed_jobs_compaction_beside_batch_maintenance_keeps_every_row_once(
        tmp_path: Path) -> None:
    """As they run together: the committer appending, the speed job compacting, a batch
    run deleting old windows and vacuuming without compacting (two concurrent
    compactions would each add their rewrite of the same rows)."""
    import threading

    uri = str(tmp_path / "speed")
    _append(uri, 0, 0)
    stop = time.monotonic() + 8
    appended = [2]
    failures: list[BaseException] = []

    def appender() -> None:
        offset = 1
        while time.monotonic() < stop:
            try:
                _append(uri, 10 + offset % 5, offset)
                appended[0] += 2
                offset += 1
            except CommitFailedError:
                pass  # refused for a concurrent commit: retried, as the committer does

    def loop(step: object) -> None:
        while time.monotonic() < stop:
            try:
                step()  # type: ignore[operator]
            except CommitFailedError:
                pass  # refused for a concurrent commit: the next pass (next batch run)
            except Exception as exc:  # noqa: BLE001 - collected, asserted below
                failures.append(exc)

    threads = [threading.Thread(target=appender),
               threading.Thread(target=loop, args=(lambda: compact(uri, min_files=2),)),
               threading.Thread(target=loop, args=(lambda: maintain(
                   uri, keep_from=T0 + timedelta(minutes=5), compact_files=False),))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures[:3]
    rows = DeltaTable(uri).to_pyarrow_table().num_rows
    assert rows == appended[0] - 2  # every append once; minute 0's rows deleted
