"""Who may do what, enforced by the real Trino: HTTPS, passwords, file-based rules.

analyst reads raw, batch and serving and writes nothing; desk reads serving only (also
views ops made over tables desk cannot read); ops does everything, procedures
included. A wrong or missing password, and any query over plain HTTP, are refused.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
import requests
import trino.dbapi
from deltalake import write_deltalake
from trino.auth import BasicAuthentication
from trino.exceptions import HttpError, TrinoAuthError, TrinoUserError

from infra.security import cert_file, password
from serving_layer.trino import connect
from shared.config import Settings

pytestmark = pytest.mark.integration
CONCORD = str(Path(sys.executable).with_name("concord"))


def _run(settings: Settings, user: str, sql: str) -> list[list[object]]:
    with connect(settings, user=user) as conn:
        cur = conn.cursor()
        cur.execute(sql)
        rows: list[list[object]] = cur.fetchall()
        return rows


def _denied(settings: Settings, user: str, sql: str) -> None:
    with pytest.raises(TrinoUserError, match="Access Denied"):
        _run(settings, user, sql)


def _create(settings: Settings, name: str, values: list[int]) -> None:
    """A Delta table written into the lake and registered by ops, as the platform's are."""
    _, schema, table = name.split(".")
    write_deltalake(settings.table_uri(schema, table), pa.table({"n": pa.array(values,
                                                                                 pa.int64())}))
    _run(settings, "ops", f"CALL lake.system.register_table(schema_name => '{schema}', "
                          f"table_name => '{table}', "
                          f"table_location => '{settings.table_uri(schema, table)}')")


def _allowed(settings: Settings, user: str, sql: str) -> None:
    """Access control lets `sql` through. (Trino's writes to the local file system are
    off, so a write passes access control and then stops in the connector: fine here.)"""
    try:
        _run(settings, user, sql)
    except TrinoUserError as exc:
        assert "Access Denied" not in str(exc), exc
        assert "Writes are not enabled" in str(exc), exc


@pytest.fixture
def tables(stack: Settings, unique: str) -> dict[str, str]:
    """One small table per schema, and a serving view over the speed table (made by ops)."""
    names = {schema: f"lake.{schema}.acl_{unique}" for schema in ("raw", "speed", "batch",
                                                                    "serving")}
    for name in names.values():
        _create(stack, name, [1, 2])
    names["view"] = f"lake.serving.acl_view_{unique}"
    _run(stack, "ops", f"CREATE VIEW {names['view']} AS SELECT n FROM {names['speed']}")
    return names


def test_each_role_is_allowed_and_denied_as_documented(
    stack: Settings, tables: dict[str, str]
) -> None:
    # analyst: reads raw, batch, serving (views too); not speed; writes nothing
    for schema in ("raw", "batch", "serving", "view"):
        assert _run(stack, "analyst", f"SELECT count(*) FROM {tables[schema]}") == [[2]]
    _denied(stack, "analyst", f"SELECT count(*) FROM {tables['speed']}")
    _denied(stack, "analyst", f"INSERT INTO {tables['serving']} VALUES (3)")
    _denied(stack, "analyst", f"DELETE FROM {tables['raw']} WHERE n = 1")
    _denied(stack, "analyst", f"DROP TABLE {tables['batch']}")
    _denied(stack, "analyst", f"CALL lake.system.vacuum('raw', '{tables['raw'].split('.')[-1]}', "
                              "'7d')")

    # desk: serving only, including a view over a table it may not read itself
    assert _run(stack, "desk", f"SELECT count(*) FROM {tables['serving']}") == [[2]]
    assert _run(stack, "desk", f"SELECT sum(n) FROM {tables['view']}") == [[3]]
    for schema in ("raw", "batch", "speed"):
        _denied(stack, "desk", f"SELECT count(*) FROM {tables[schema]}")
    _denied(stack, "desk", f"INSERT INTO {tables['serving']} VALUES (3)")
    _denied(stack, "desk", f"DELETE FROM {tables['serving']}")
    _denied(stack, "desk", f"DROP VIEW {tables['view']}")
    _denied(stack, "desk", f"CALL lake.system.vacuum('serving', "
                           f"'{tables['serving'].split('.')[-1]}', '7d')")
    visible = {r[0] for r in _run(stack, "desk", "SHOW SCHEMAS FROM lake")}
    assert "serving" in visible and not visible & {"raw", "batch", "speed", "meta"}

    # ops: everything, procedures included
    _allowed(stack, "ops", f"INSERT INTO {tables['serving']} VALUES (3)")
    _allowed(stack, "ops", f"DELETE FROM {tables['serving']} WHERE n = 3")
    _run(stack, "ops", "CALL lake.system.flush_metadata_cache()")  # register_table: fixture
    _run(stack, "ops", f"DROP VIEW {tables['view']}")
    for schema in ("raw", "speed", "batch", "serving"):
        _run(stack, "ops", f"DROP TABLE {tables[schema]}")


def test_wrong_or_missing_password_and_plain_http_are_refused(stack: Settings) -> None:
    def attempt(**kwargs: object) -> None:
        session = requests.Session()
        session.trust_env = False  # only our certificate (see serving_layer.trino.connect)
        session.verify = str(cert_file(stack))
        conn = trino.dbapi.connect(  # type: ignore[no-untyped-call]
            host="127.0.0.1", catalog="lake", user="analyst", http_session=session, **kwargs)
        try:
            cur = conn.cursor()
            cur.execute("SELECT 1")
            cur.fetchall()
        finally:
            conn.close()

    https = {"port": stack.trino_https_port, "http_scheme": "https"}
    attempt(**https, auth=BasicAuthentication("analyst", password(stack, "analyst")))  # works
    with pytest.raises(HttpError, match="401"):
        attempt(**https, auth=BasicAuthentication("analyst", "not-the-password"))
    with pytest.raises(HttpError, match="401"):
        attempt(**https, auth=BasicAuthentication("desk", password(stack, "analyst")))
    with pytest.raises(HttpError, match="401"):
        attempt(**https)  # no credentials at all
    # Plain HTTP: the client will not send a password over it, and Trino answers no query.
    with pytest.raises(TrinoAuthError):
        attempt(port=stack.trino_port, http_scheme="http",
                auth=BasicAuthentication("analyst", password(stack, "analyst")))
    with pytest.raises(HttpError, match="403"):
        attempt(port=stack.trino_port, http_scheme="http")


def test_concord_sql_runs_the_trino_cli_as_the_role(stack: Settings, unique: str) -> None:
    table, hidden = f"lake.serving.acl_cli_{unique}", f"lake.raw.acl_cli_{unique}"
    for name in (table, hidden):
        _create(stack, name, [7])
    env = {**os.environ, **stack.as_env(), "CONCORD_TRINO_USER": "desk"}

    def sql(query: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([CONCORD, "sql", "--execute", query, "--output-format", "CSV"],
                              env=env, capture_output=True, text=True, timeout=120, check=False)

    done = sql(f"SELECT n FROM {table}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == '"7"'
    done = sql(f"SELECT n FROM {hidden}")
    assert done.returncode != 0 and "Access Denied" in done.stderr, done.stderr
    for name in (table, hidden):
        _run(stack, "ops", f"DROP TABLE {name}")
