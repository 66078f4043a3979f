"""The lake's tables that more than one layer touches: their columns, in one place.

Column lists are (name, SQL type) in the neutral spelling of shared.views; `arrow_schema`
gives the Arrow schema writers use, `ensure_table` creates an empty Delta table so
that readers (Trino views) can exist before the first writer has run, and `open_table`
tells a missing table from an unreadable one.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlparse
from urllib.request import url2pathname

import pyarrow as pa

from shared.views import View

if TYPE_CHECKING:
    from deltalake import DeltaTable

Columns = list[tuple[str, str]]

# The lake's schemas, one folder each under the lake root (and one Trino schema each).
SCHEMAS: Final = ("raw", "speed", "batch", "meta", "serving")

# meta.boundaries: append-only; a view's boundary is its row with the largest run_id.
# Batch rows of windows below the boundary are served; speed rows at or above it.
BOUNDARIES: Final[Columns] = [
    ("view_name", "VARCHAR"), ("boundary", "TIMESTAMP"), ("run_id", "BIGINT"),
    ("raw_version", "BIGINT"), ("published_at", "TIMESTAMP"),
]
# meta.ingest_runs: the batch ingest's ledger, append-only. A run is appended `planned`
# (its offset range per partition) before any data is written, then `committed`.
INGEST_RUNS: Final[Columns] = [
    ("run_id", "BIGINT"), ("topic", "VARCHAR"), ("kafka_partition", "INTEGER"),
    ("start_offset", "BIGINT"), ("end_offset", "BIGINT"), ("status", "VARCHAR"),
    ("records", "BIGINT"), ("accepted", "BIGINT"), ("rejected", "BIGINT"),
    ("duplicates", "BIGINT"), ("at", "TIMESTAMP"),
]
EMITTED_AT: Final = ("emitted_at", "TIMESTAMP")
# Messages the speed layer's contract rejected, counted per reason each second.
SPEED_REJECTS: Final[Columns] = [
    ("emitted_at", "TIMESTAMP"), ("reason", "VARCHAR"), ("messages", "BIGINT"),
]


def speed_columns(view: View) -> Columns:
    """`lake.speed.<view>`: the partial row and when the speed job emitted it."""
    return [*view.partial_columns(), EMITTED_AT]


def batch_columns(view: View) -> Columns:
    """`lake.batch.<view>`: partial rows of whole windows."""
    return view.partial_columns()


def arrow_schema(columns: Columns) -> pa.Schema:
    def arrow(sql: str) -> pa.DataType:
        if sql.startswith("DECIMAL("):
            precision, scale = sql[len("DECIMAL("):-1].split(",")
            return pa.decimal128(int(precision), int(scale))
        return {"VARCHAR": pa.string(), "BIGINT": pa.int64(), "INTEGER": pa.int32(),
                "TIMESTAMP": pa.timestamp("us", tz="UTC")}[sql]

    return pa.schema([(name, arrow(sql)) for name, sql in columns])


class LakeReadError(RuntimeError):
    """A Delta table could not be read (and it is not simply missing)."""


# Reading a table's log can fail for a moment (an object store's hiccup, a file being
# replaced); such a read is retried this often before the error is raised.
OPEN_ATTEMPTS = 5
OPEN_BACKOFF_S = 0.2


def open_table(uri: str, *, attempts: int = OPEN_ATTEMPTS,
               backoff_s: float = OPEN_BACKOFF_S) -> DeltaTable | None:
    """The Delta table at `uri`, or None when there is no table there.

    Only delta-rs's table-not-found error means "no table" (and, in a local lake, only
    when the folder holds no log either). Any other error is retried `attempts` times
    with a growing pause and then raised as LakeReadError: a caller deciding what was
    already committed (offsets, ingest runs, boundaries) must never take an unreadable
    table for an empty one.
    """
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    for attempt in range(1, attempts + 1):
        try:
            return DeltaTable(uri)
        except TableNotFoundError:
            if not _has_log(uri):
                return None
            error: Exception = LakeReadError(f"{uri} has a Delta log but cannot be read")
        except Exception as exc:  # noqa: BLE001 - retried, then raised with its cause
            error = exc
        if attempt < attempts:
            time.sleep(backoff_s * attempt)
    raise LakeReadError(f"cannot read the Delta table at {uri} after {attempts} attempts: "
                        f"{error}") from error


def _has_log(uri: str) -> bool:
    """A local table folder with commits or checkpoints in its log."""
    parsed = urlparse(uri)
    if parsed.scheme not in ("", "file"):
        return False
    log = Path(url2pathname(parsed.path) if parsed.scheme else uri) / "_delta_log"
    return log.is_dir() and any(p.suffix in (".json", ".parquet") for p in log.iterdir())


def read_rows(uri: str) -> list[dict[str, Any]]:
    """Every row of the Delta table at `uri` as dicts; [] when there is no table."""
    table = open_table(uri)
    if table is None:
        return []
    rows: list[dict[str, Any]] = table.to_pyarrow_table().to_pylist()
    return rows


def ensure_table(uri: str, columns: Columns) -> bool:
    """Create an empty Delta table at `uri` unless one exists; True when created."""
    from deltalake import write_deltalake

    if open_table(uri) is not None:
        return False
    write_deltalake(uri, arrow_schema(columns).empty_table(), mode="append")
    return True


def append_once(uri: str, rows: list[dict[str, Any]], app_id: str, version: int, *,
                schema: pa.Schema | None = None, partition_by: list[str] | None = None
                ) -> bool:
    """Append `rows` in one commit carrying the Delta transaction (`app_id`, `version`),
    exactly once: False (nothing written) when the table's transaction already holds
    `version` or later. `schema` None: the existing table's own (it must exist)."""
    from deltalake import CommitProperties, Transaction, write_deltalake

    table = open_table(uri)
    if table is not None:
        done = table.transaction_version(app_id)
        if done is not None and int(done) >= version:
            return False
    if schema is None:
        if table is None:
            raise RuntimeError(f"no Delta table at {uri}: nothing to take its schema from")
        schema = pa.schema(table.schema().to_arrow())
    write_deltalake(table if table is not None else uri,
                    pa.Table.from_pylist(rows, schema=schema), mode="append",
                    partition_by=partition_by, commit_properties=CommitProperties(
                        app_transactions=[Transaction(app_id, version,
                                                      int(time.time() * 1000))]))
    return True
