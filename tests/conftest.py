"""Fixtures shared by all tests: the real engines, started once per test session.

The stack gets its own CONCORD_HOME under pytest's temp folder and free ports, so a
test run never collides with a `make demo` on the same machine, and it is always
stopped at the end of the session, also when a test fails.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.config import Settings


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Kafka + Trino running, topic and schemas created; yields their settings."""
    from harness.stack import private_settings, running

    home = tmp_path_factory.mktemp("concord-home")
    # Monitoring on, as in the demo (the dashboard's ops strip reads it; Kafka serves its
    # metrics for tests/e2e/test_monitoring.py), every alert's `for:` 5 s.
    with running(private_settings(home, trino_heap="2G", monitoring=True,
                                  alert_for_s=5)) as settings:
        yield settings


@pytest.fixture(scope="session")
def spark(stack: Settings) -> Iterator[object]:
    """One SparkSession for the session (JVM start is the slow part); stopped at the end."""
    from infra.engines import spark_session

    session = spark_session(stack, "concord-tests")
    try:
        yield session
    finally:
        session.stop()


@pytest.fixture
def unique() -> str:
    """A short random suffix for topic and table names, so tests never share state."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def artifact_dir() -> Path:
    """Where tests keep files worth looking at after the run (screenshots, reports)."""
    path = Path(__file__).resolve().parents[1] / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path
