"""`concord serve refresh`: the lake's tables and the serving views in Trino.

Idempotent. Creates the lake's schemas (`concord up` does too) and the empty tables the
views read when no layer has written them yet (speed.<view>, batch.<view>,
meta.boundaries), registers every Delta table of the lake, then (re)creates the
serving views:
- serving.<view> for every declared view: batch below the boundary + merged speed
  partials at or above it (serving_layer.trino_views.serving_view_sql);
- serving.bars_5m, serving.bars_1h: rolled up from serving.bars_1m;
- serving.spread_1m: per symbol and minute, the spread of closes across exchanges;
- serving.ticker: the latest trade per exchange and symbol;
- serving.boundaries: each view's current boundary (for readers of serving only).
"""

from __future__ import annotations

from serving_layer.trino import connect, query, register_table
from serving_layer.trino_views import (
    boundaries_sql,
    rollup_sql,
    serving_view_sql,
    spread_sql,
    ticker_sql,
)
from shared.config import Settings
from shared.tables import BOUNDARIES, SCHEMAS, batch_columns, ensure_table, speed_columns
from shared.views import BARS_1M, VIEWS


def ensure_schemas(settings: Settings) -> None:
    """Create the lake's schemas in Trino (idempotent), each at its folder in the lake."""
    with connect(settings) as conn:
        cur = conn.cursor()
        for schema in SCHEMAS:
            # Explicit location: the schema's folder in the lake, not in the metastore.
            location = settings.table_uri(schema, "").rstrip("/")
            cur.execute(
                f"CREATE SCHEMA IF NOT EXISTS {settings.catalog}.{schema} "
                f"WITH (location = '{location}')"
            )
            cur.fetchall()


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


def serving_views(settings: Settings) -> dict[str, str]:
    """name -> SELECT of every serving view."""
    cat = settings.catalog
    views = {name: serving_view_sql(view, cat) for name, view in VIEWS.items()}
    bars = f"{cat}.serving.{BARS_1M.name}"
    views["bars_5m"] = rollup_sql(bars, "5 MINUTE")
    views["bars_1h"] = rollup_sql(bars, "1 HOUR")
    views["spread_1m"] = spread_sql(bars)
    views["ticker"] = ticker_sql(BARS_1M, cat)
    views["boundaries"] = boundaries_sql(cat)
    return views


def refresh(settings: Settings) -> list[str]:
    """Tables, registrations and views; returns one line per object saying what happened."""
    ensure_schemas(settings)
    lines = []
    created = []
    for view in VIEWS.values():
        if ensure_table(settings.table_uri("speed", view.name), speed_columns(view)):
            created.append(f"speed.{view.name}")
        if ensure_table(settings.table_uri("batch", view.name), batch_columns(view)):
            created.append(f"batch.{view.name}")
    if ensure_table(settings.table_uri("meta", "boundaries"), BOUNDARIES):
        created.append("meta.boundaries")
    for schema, table in lake_tables(settings):
        added = register_table(settings, schema, table)
        new = " (created empty)" if f"{schema}.{table}" in created else ""
        lines.append(f"{settings.catalog}.{schema}.{table}: "
                     f"{'registered' if added else 'ok'}{new}")
    for name, select in serving_views(settings).items():
        query(settings, f"CREATE OR REPLACE VIEW {settings.catalog}.serving.{name} AS {select}")
        lines.append(f"{settings.catalog}.serving.{name}: view")
    return lines
