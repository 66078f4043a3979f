"""The speed layer's Delta committer against a table it cannot read for a moment.

Only a table that does not exist means "nothing committed": a committer that took a
read error for an empty table would seek every partition to offset 0 and append again
everything the table already holds. Real Kafka, real delta-rs; the failure is injected
where the committer opens its table.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import deltalake
import pyarrow as pa
import pytest

from infra import kafka
from shared.config import Settings
from shared.tables import LakeReadError
from speed_layer.delta_committer import DeltaCommitter
from tests.committer import drain

pytestmark = pytest.mark.integration

SCHEMA = pa.schema([("id", pa.string()), ("price", pa.decimal128(18, 8))])


def _send(stack: Settings, topic: str, ids: range) -> None:
    producer = kafka.producer(stack)
    for i in ids:
        producer.send(topic, key=str(i % 5).encode(),
                      value=json.dumps({"id": f"r{i}", "price": f"{i}.5"}).encode())
    producer.flush()
    producer.close()


def _committer(stack: Settings, topic: str, uri: str) -> DeltaCommitter:
    return DeltaCommitter(stack, topic=topic, table_uri=uri, schema=SCHEMA,
                          app_id=f"it-{topic}")


def _committed(stack: Settings, topic: str, uri: str, n: int, partitions: int) -> None:
    """`n` records sent to a new `topic` and committed to `uri` by a committer that then
    stops, as a speed job does before a restart."""
    kafka.ensure_topic(stack, topic, partitions)
    _send(stack, topic, range(n))
    first = _committer(stack, topic, uri)
    try:
        assert drain(first, n) == n
    finally:
        first.close()


@pytest.fixture
def flaky_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """Opening a Delta table fails (as an object store's hiccup would) while
    `failures["left"]` is above zero; each failed open counts it down."""
    failures = {"left": 0}
    real = deltalake.DeltaTable

    class Flaky(real):  # type: ignore[misc, valid-type]
        def __init__(self, *args: object, **kwargs: object) -> None:
            if failures["left"] > 0:
                failures["left"] -= 1
                raise OSError("connection reset while reading _delta_log")
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(deltalake, "DeltaTable", Flaky)
    # Wherever the committer module holds its own reference to the class.
    monkeypatch.setattr("speed_layer.delta_committer.DeltaTable", Flaky, raising=False)
    yield failures


def test_a_restart_during_a_read_error_writes_no_row_twice(
    stack: Settings, unique: str, flaky_reads: dict[str, int]
) -> None:
    topic = f"it-committer-{unique}"
    uri = stack.table_uri("speed", f"it_committer_{unique}")
    _committed(stack, topic, uri, 500, partitions=2)

    flaky_reads["left"] = 1  # the restarted committer's first read of its table fails
    _send(stack, topic, range(500, 800))
    second = _committer(stack, topic, uri)
    try:
        assert flaky_reads["left"] == 0, "the committer never read its table"
        drain(second, 300)
        assert second.poll_once(timeout_ms=1000) == 0
    finally:
        second.close()

    rows = deltalake.DeltaTable(uri).to_pyarrow_table().to_pylist()
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} rows written twice"
    assert set(ids) == {f"r{i}" for i in range(800)}
    assert sum((r["price"] for r in rows), Decimal(0)) == sum(
        (Decimal(f"{i}.5") for i in range(800)), Decimal(0))


def test_a_table_that_stays_unreadable_stops_the_committer(
    stack: Settings, unique: str, flaky_reads: dict[str, int]
) -> None:
    topic = f"it-committer-down-{unique}"
    uri = stack.table_uri("speed", f"it_committer_down_{unique}")
    _committed(stack, topic, uri, 100, partitions=1)

    flaky_reads["left"] = 1_000
    with pytest.raises(LakeReadError, match="cannot read the Delta table"):
        _committer(stack, topic, uri)
    flaky_reads["left"] = 0
    assert deltalake.DeltaTable(uri).to_pyarrow_table().num_rows == 100


def test_a_commit_refused_for_a_concurrent_one_is_retried_exactly_once(
    stack: Settings, unique: str, tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Delta refuses an append when a concurrent commit deleted data it read (a batch
    run's speed maintenance, seen by bench.faults): the committer goes back to the
    table's offsets and commits the same records again, none lost, none twice."""
    from deltalake.exceptions import CommitFailedError

    import speed_layer.delta_committer as module

    topic = f"it-conflict-{unique}"
    uri = f"{tmp_path}/conflict"
    kafka.ensure_topic(stack, topic, 2)
    _send(stack, topic, range(300))
    real = deltalake.write_deltalake
    calls = {"n": 0}

    def conflicting(*args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # the second commit: refused
            raise CommitFailedError("Failed to commit transaction: Commit failed: a "
                                    "concurrent transaction deleted data this operation read.")
        real(*args, **kwargs)

    monkeypatch.setattr(module, "write_deltalake", conflicting)
    committer = _committer(stack, topic, uri)
    committer.max_batch = 100
    try:
        assert drain(committer, 300) == 300
        assert committer.stats.conflicts == 1 and calls["n"] >= 4
    finally:
        committer.close()
    ids = deltalake.DeltaTable(uri).to_pyarrow_table().column("id").to_pylist()
    assert sorted(ids) == sorted(f"r{i}" for i in range(300))  # each exactly once
