"""Connections to the serving layer (Trino), and registration of lake tables."""

from __future__ import annotations

import re
from typing import Any

import trino.dbapi

from shared.config import Settings

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,127}$")


def ident(name: str) -> str:
    """`name` if it is a plain lower-case SQL identifier; raises otherwise.

    Schema and table names are spliced into SQL text (Trino procedures take no bind
    parameters for them), so only names of this shape are ever accepted.
    """
    if not _IDENT.match(name):
        raise ValueError(f"not a valid table or schema name: {name!r}")
    return name


def connect(settings: Settings, *, user: str | None = None) -> trino.dbapi.Connection:
    """A DB-API connection to Trino as `user` (default CONCORD_TRINO_USER), catalog `lake`,
    session time zone UTC: HTTPS with the user's password (infra.security); the local
    coordinator's self-signed certificate is verified against its copy in the secrets."""
    from trino.auth import BasicAuthentication

    from infra.security import cert_file, password

    user = user or settings.trino_user
    scheme, _, rest = settings.trino_endpoint.partition("://")
    host, _, port = rest.partition(":")
    session = None
    if settings.manages_trino:
        import requests

        # The local coordinator's own certificate, and only it: with trust_env off,
        # REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE (which requests prefers to a session's
        # `verify`) cannot replace it, and no proxy sits between us and 127.0.0.1.
        session = requests.Session()
        session.trust_env = False
        session.verify = str(cert_file(settings))
    conn: trino.dbapi.Connection = trino.dbapi.connect(  # type: ignore[no-untyped-call]
        host=host,
        port=int(port or (443 if scheme == "https" else 80)),
        http_scheme=scheme,
        user=user,
        auth=BasicAuthentication(user, password(settings, user)) if scheme == "https" else None,
        http_session=session,
        catalog=settings.catalog,
        timezone="UTC",
    )
    return conn


def query(settings: Settings, sql: str) -> list[list[Any]]:
    """Run one statement and return all rows."""
    with connect(settings) as conn:
        cur = conn.cursor()
        cur.execute(sql)
        rows: list[list[Any]] = cur.fetchall()
        return rows


def trino_location(settings: Settings, schema: str, table: str) -> str:
    """Location of a lake table for Trino: the same URI the writers use."""
    return settings.table_uri(schema, table)


def register_table(
    settings: Settings, schema: str, table: str, location: str | None = None
) -> bool:
    """Make a Delta table written by Spark, Flink or delta-rs visible to Trino.

    `location` defaults to the table's place in the lake. Idempotent: returns False
    when the table was registered already at that location; a registration pointing
    elsewhere (another lake) is replaced.
    """
    cat, schema, table = ident(settings.catalog), ident(schema), ident(table)
    location = location or trino_location(settings, schema, table)
    existing = query(
        settings,
        f"SELECT 1 FROM {cat}.information_schema.tables "  # noqa: S608 - validated identifiers
        f"WHERE table_schema = '{schema}' AND table_name = '{table}'",
    )
    if existing:
        ddl = query(settings, f"SHOW CREATE TABLE {cat}.{schema}.{table}")[0][0]
        found = re.search(r"location = '([^']*)'", ddl)
        if found and found.group(1).rstrip("/") == location.rstrip("/"):
            return False
        # Registered elsewhere (another lake, e.g. CONCORD_LAKE_URI changed): follow the lake.
        query(settings, f"CALL {cat}.system.unregister_table(schema_name => '{schema}', "
                        f"table_name => '{table}')")
    query(
        settings,
        f"CALL {cat}.system.register_table(schema_name => '{schema}', table_name => '{table}', "
        f"table_location => '{location}')",
    )
    return True
