"""Connections to the serving layer (Trino), and registration of lake tables."""

from __future__ import annotations

from typing import Any

import trino.dbapi

from shared.config import Settings


def connect(settings: Settings, *, user: str | None = None) -> trino.dbapi.Connection:
    """A DB-API connection to Trino, catalog `lake`, session time zone UTC."""
    url = settings.trino_endpoint
    scheme, _, rest = url.partition("://")
    host, _, port = rest.partition(":")
    return trino.dbapi.connect(
        host=host,
        port=int(port or (443 if scheme == "https" else 80)),
        http_scheme=scheme,
        user=user or settings.trino_user,
        catalog=settings.catalog,
        timezone="UTC",
    )


def query(settings: Settings, sql: str) -> list[list[Any]]:
    """Run one statement and return all rows."""
    with connect(settings) as conn:
        cur = conn.cursor()
        cur.execute(sql)
        rows: list[list[Any]] = cur.fetchall()
        return rows


def trino_location(settings: Settings, schema: str, table: str) -> str:
    """Location of a lake table as Trino's catalog names it (local:/// for a local lake)."""
    if settings.lake_is_local:
        return f"local:///{schema}/{table}"
    return settings.table_uri(schema, table)


def register_table(settings: Settings, schema: str, table: str) -> bool:
    """Make a Delta table written by Spark, Flink or delta-rs visible to Trino.

    Idempotent: returns False when the table was registered already.
    """
    cat = settings.catalog
    existing = query(
        settings,
        f"SELECT 1 FROM {cat}.information_schema.tables "
        f"WHERE table_schema = '{schema}' AND table_name = '{table}'",
    )
    if existing:
        return False
    query(
        settings,
        f"CALL {cat}.system.register_table(schema_name => '{schema}', table_name => '{table}', "
        f"table_location => '{trino_location(settings, schema, table)}')",
    )
    return True
