"""The speed layer's path: Flink reads Kafka and lands rows in Delta that Trino reads.

Flink writes with its exactly-once Kafka sink (transactions committed on checkpoints);
the Delta committer moves committed records into Delta with per-partition `txn`
versions, so running it again never writes a record twice.
"""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pytest

from concord.smoke import produce, sample_trades
from infra.engines import flink_table_env
from infra.kafka import ensure_topic, flink_properties
from serving_layer.trino import query, register_table
from shared.config import Settings
from speed_layer.delta_committer import DeltaCommitter
from speed_layer.flink_io import kafka_exactly_once_sink_ddl, kafka_source_ddl
from tests.committer import drain

pytestmark = pytest.mark.integration

SCHEMA = pa.schema([
    ("symbol", pa.string()),
    ("trade_id", pa.string()),
    ("price", pa.decimal128(18, 8)),
    ("qty", pa.decimal128(18, 8)),
    ("ts", pa.int64()),
])


def _committer(stack: Settings, topic: str, table: str) -> DeltaCommitter:
    return DeltaCommitter(
        stack,
        topic=topic,
        table_uri=stack.table_uri("speed", table),
        schema=SCHEMA,
        app_id=f"it-{table}",
    )


def test_flink_job_lands_kafka_rows_in_delta_read_by_trino(stack: Settings, unique: str) -> None:
    source, sink = f"it-flink-in-{unique}", f"it-flink-out-{unique}"
    ensure_topic(stack, source, 2)
    ensure_topic(stack, sink, 2)
    trades = sample_trades(3000, seed=11)
    produce(stack, source, trades)

    t_env = flink_table_env(stack)
    t_env.execute_sql(kafka_source_ddl(
        "src",
        "symbol STRING, trade_id STRING, price STRING, qty STRING, ts BIGINT",
        topic=source, connection=flink_properties(stack), group_id=f"it-{unique}",
        bounded=True,
    ))
    t_env.execute_sql(kafka_exactly_once_sink_ddl(
        "dst",
        "symbol STRING, trade_id STRING, price DECIMAL(18,8), qty DECIMAL(18,8), ts BIGINT",
        topic=sink, connection=flink_properties(stack), transactional_id_prefix=f"it-{unique}",
    ))
    t_env.execute_sql(
        "INSERT INTO dst SELECT symbol, trade_id, CAST(price AS DECIMAL(18,8)), "
        "CAST(qty AS DECIMAL(18,8)), ts FROM src"
    ).wait()

    table = f"it_flink_{unique}"
    committer = _committer(stack, sink, table)
    try:
        assert drain(committer, len(trades)) == len(trades)
        assert committer.poll_once(timeout_ms=500) == 0
    finally:
        committer.close()

    # A second committer (a restart) resumes after the committed offsets: writes nothing.
    again = _committer(stack, sink, table)
    try:
        assert again.committed_offsets() != {0: -1, 1: -1}
        assert drain(again, 1, timeout_s=3) == 0
    finally:
        again.close()

    register_table(stack, "speed", table)
    count, distinct, volume, notional = query(
        stack,
        f"SELECT count(*), count(DISTINCT trade_id), sum(qty), "
        f"sum(CAST(price * qty AS DECIMAL(38,16))) FROM lake.speed.{table}",
    )[0]
    assert count == distinct == len(trades)
    assert volume == sum((Decimal(t["qty"]) for t in trades), Decimal(0))
    assert notional == sum((Decimal(t["price"]) * Decimal(t["qty"]) for t in trades), Decimal(0))
