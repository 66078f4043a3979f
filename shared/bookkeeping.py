"""The lake's bookkeeping, one owner: meta.boundaries, meta.ingest_runs, speed retention.

- `meta.boundaries` (append-only): per view, each boundary the batch layer published
  and the last ingest run it recomputed. A view's boundary is its newest row: batch
  rows below it are served, speed rows at or above it.
- `meta.ingest_runs` (append-only): the batch ingest's ledger. A run's offset range per
  partition is appended `planned` before any data is written, and `committed` after;
  the next run starts where the last committed one ended.
- Speed retention: how far back a view's speed rows are kept (`keep_from`), which is
  also where `concord reconcile` finds the speed side complete.

Each definition is written once here. The readers go through delta-rs (`open_table`:
an unreadable table raises, it is never taken for an empty one); reconcile, which
reads the lake through Trino, gets the same rows from Trino (`*_sql`) and hands them
to the same functions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from shared.config import Settings
from shared.tables import (
    BOUNDARIES,
    INGEST_RUNS,
    append_once,
    arrow_schema,
    ensure_table,
    read_rows,
)

# (boundary, last ingest run recomputed), oldest first, per view.
History = dict[str, list[tuple[datetime, int]]]


def boundaries_uri(settings: Settings) -> str:
    return settings.table_uri("meta", "boundaries")


def ingest_runs_uri(settings: Settings) -> str:
    return settings.table_uri("meta", "ingest_runs")


# --- meta.boundaries ------------------------------------------------------------------


def history_of(rows: Iterable[Mapping[str, Any]]) -> History:
    """Rows of meta.boundaries -> view -> its (boundary, run_id), oldest first (by run,
    then by the moment it was published)."""
    out: History = {}
    for r in sorted(rows, key=lambda r: (r["run_id"], _utc(r["published_at"]))):
        out.setdefault(r["view_name"], []).append((_utc(r["boundary"]), int(r["run_id"])))
    return out


def boundary_history(settings: Settings) -> History:
    """view -> its published (boundary, last ingest run recomputed), oldest first."""
    return history_of(read_rows(boundaries_uri(settings)))


def current_boundaries(settings: Settings) -> dict[str, tuple[datetime, int]]:
    """view -> its current (boundary, last ingest run recomputed)."""
    return {view: rows[-1] for view, rows in boundary_history(settings).items()}


def publish_boundaries(settings: Settings, rows: list[dict[str, Any]]) -> None:
    """Append boundary rows (view_name, boundary, run_id, raw_version, published_at) in
    one commit: every view's new boundary becomes visible at once."""
    from deltalake import write_deltalake

    uri = boundaries_uri(settings)
    ensure_table(uri, BOUNDARIES)
    write_deltalake(uri, pa.Table.from_pylist(rows, schema=arrow_schema(BOUNDARIES)),
                    mode="append")


def current_boundary_sql(view_name: str, catalog: str) -> str:
    """A view's current boundary in Trino SQL (the epoch when none was published yet)."""
    return (f"(SELECT coalesce(max_by(boundary, run_id), from_unixtime(0)) "
            f"FROM {catalog}.meta.boundaries WHERE view_name = '{view_name}')")


def boundary_rows_sql(catalog: str) -> str:
    """The rows `history_of` reads, through Trino."""
    return (f"SELECT view_name, boundary, run_id, published_at "
            f"FROM {catalog}.meta.boundaries")


# --- meta.ingest_runs -----------------------------------------------------------------


def ingest_ledger(settings: Settings, topic: str) -> list[dict[str, Any]]:
    """The ledger rows of `topic` (every status), in no particular order."""
    return [r for r in read_rows(ingest_runs_uri(settings)) if r["topic"] == topic]


def ingested_until(ledger: Iterable[Mapping[str, Any]]) -> dict[int, int]:
    """Per partition, the offset where the next run starts: the end of the last committed
    run in `ledger` (rows of lake.meta.ingest_runs of one topic)."""
    last_end: dict[int, int] = {}
    for r in ledger:
        if r["status"] == "committed":
            p = int(r["kafka_partition"])
            last_end[p] = max(last_end.get(p, 0), int(r["end_offset"]))
    return last_end


def ingest_ledger_sql(catalog: str, topic: str) -> str:
    """The committed ledger rows of `topic` that `ingested_until` reads, through Trino."""
    quoted = topic.replace("'", "''")
    return (f"SELECT kafka_partition, end_offset, status "
            f"FROM {catalog}.meta.ingest_runs WHERE topic = '{quoted}' "
            f"AND status = 'committed'")


def ledger_rows(rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    """Rows of `ingest_ledger_sql` as the mappings `ingested_until` reads."""
    return [{"kafka_partition": p, "end_offset": o, "status": s} for p, o, s in rows]


def append_ledger(settings: Settings, run_id: int, topic: str, status: str,
                  counts: Iterable[tuple[int, Mapping[str, int]]], *, app_id: str) -> bool:
    """Append one run's rows with `status`, exactly once: the commit carries the Delta
    transaction (`app_id`-<status>-<topic>, run_id), and a run whose rows of this status
    are already in the table is not written again. False when it was there already.

    `counts`: per partition, start_offset, end_offset, records, accepted, rejected,
    duplicates."""
    now = datetime.now(UTC)
    rows = [{"run_id": run_id, "topic": topic, "kafka_partition": p,
             "start_offset": c["start_offset"], "end_offset": c["end_offset"],
             "status": status, "records": c["records"], "accepted": c["accepted"],
             "rejected": c["rejected"], "duplicates": c["duplicates"], "at": now}
            for p, c in sorted(counts)]
    return append_once(ingest_runs_uri(settings), rows, f"{app_id}-ledger-{status}-{topic}",
                       run_id, schema=arrow_schema(INGEST_RUNS))


# --- speed retention ------------------------------------------------------------------


def keep_from(boundaries: Iterable[datetime], retention_s: int) -> datetime | None:
    """Where a view's speed rows must be kept from, given its published boundaries: the
    older of the previous boundary and the newest boundary minus the retention. None
    (keep all) before a second boundary exists: a reader pairing the newest boundary
    with the batch snapshot before it needs the speed rows from the previous boundary
    on (batch_layer.run). Windows from here on are complete in the speed table."""
    distinct = sorted(set(boundaries))
    if len(distinct) < 2:
        return None
    return min(distinct[-2], distinct[-1] - timedelta(seconds=retention_s))


def _utc(moment: datetime) -> datetime:
    """Trino returns naive UTC timestamps, delta-rs aware ones: one form for both."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
