"""`concord serve refresh`: make every Delta table in the lake visible in Trino.

Idempotent: a table already registered is left alone. Views over the tables are
added here as the layers that produce them land.
"""

from __future__ import annotations

from infra.services import SCHEMAS, ensure_schemas
from serving_layer.trino import register_table
from shared.config import Settings


def lake_tables(settings: Settings) -> list[tuple[str, str]]:
    """(schema, table) of every Delta table under the lake (a folder with _delta_log)."""
    if not settings.lake_is_local:
        raise NotImplementedError(
            "listing tables of an object-store lake is not supported yet; "
            "register them with CALL lake.system.register_table"
        )
    found = []
    for schema in SCHEMAS:
        root = settings.lake_path / schema
        if root.is_dir():
            found += [(schema, t.name) for t in sorted(root.iterdir())
                      if (t / "_delta_log").is_dir()]
    return found


def refresh(settings: Settings) -> list[str]:
    """Register the lake's tables; returns one line per table saying what happened."""
    ensure_schemas(settings)
    lines = []
    for schema, table in lake_tables(settings):
        added = register_table(settings, schema, table)
        lines.append(f"{settings.catalog}.{schema}.{table}: {'registered' if added else 'ok'}")
    if not lines:
        lines.append(f"no Delta tables under {settings.lake} yet")
    return lines
