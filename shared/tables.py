"""The lake's tables that more than one layer touches: their columns, in one place.

Column lists are (name, SQL type) in the neutral spelling of shared.views; `arrow_schema`
gives the Arrow schema writers use, `ensure_table` creates an empty Delta table so
that readers (Trino views) can exist before the first writer has run.
"""

from __future__ import annotations

from typing import Final

import pyarrow as pa

from shared.views import View

Columns = list[tuple[str, str]]

# meta.boundaries: append-only; a view's boundary is its row with the largest run_id.
# Batch rows of windows below the boundary are served; speed rows at or above it.
BOUNDARIES: Final[Columns] = [
    ("view_name", "VARCHAR"), ("boundary", "TIMESTAMP"), ("run_id", "BIGINT"),
    ("raw_version", "BIGINT"), ("published_at", "TIMESTAMP"),
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
        return {"VARCHAR": pa.string(), "BIGINT": pa.int64(),
                "TIMESTAMP": pa.timestamp("us", tz="UTC")}[sql]

    return pa.schema([(name, arrow(sql)) for name, sql in columns])


def ensure_table(uri: str, columns: Columns) -> bool:
    """Create an empty Delta table at `uri` unless one exists; True when created."""
    from deltalake import DeltaTable, write_deltalake

    if DeltaTable.is_deltatable(uri):
        return False
    write_deltalake(uri, arrow_schema(columns).empty_table(), mode="append")
    return True
