"""One contract, two engines: every contract case through Spark and through Flink.

Each case's bytes go to a real Kafka topic; the batch layer's Spark parse (mapInArrow)
and the speed layer's Flink UDF read them back. Both must give the case's expected
verdict, and the same full record (detail text included) as each other.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pyspark.sql import SparkSession

from batch_layer.ingest import parse_records
from infra import kafka
from infra.engines import flink_table_env
from infra.kafka import ensure_topic
from shared.config import Settings
from shared.contract import VERDICT_FIELDS, Reason, verdict
from speed_layer import contract_udf
from speed_layer.flink_io import kafka_source_ddl
from tests.contract_cases import CASES, engine_sample, fast_path_samples

pytestmark = pytest.mark.integration

NAMES = [name for name, _ in VERDICT_FIELDS]
# Every case, plus a Kafka tombstone (null value).
VALUES: list[bytes | None] = [c[1] for c in CASES] + [None]
EXPECTED: list[str | dict[str, Any]] = [c[2] for c in CASES] + [Reason.MALFORMED_JSON]
IDS = [c[0] for c in CASES] + ["tombstone"]


def _send(stack: Settings, name: str, values: list[bytes | None], *,
          odd_records: bool = False) -> str:
    """`values` in order to a new one-partition topic `name` (offset i = values[i]);
    `odd_records`: with a null, binary or 5 kB key and headers on some of them."""
    ensure_topic(stack, name, 1)
    producer = kafka.producer(stack, max_request_size=2**20)
    keys = [b"binance:BTC-USDT", None, b"\x00\xfe\xff", b"k" * 5000] if odd_records else [
        b"binance:BTC-USDT"]
    for i, value in enumerate(values):
        headers = [("trace", b"\x00\xff"), ("source", b"")] if odd_records and i % 3 else []
        producer.send(name, key=keys[i % len(keys)], value=value, headers=headers)
    producer.flush()
    producer.close()
    return name


@pytest.fixture
def topic(stack: Settings, unique: str) -> str:
    return _send(stack, f"it-contract-{unique}", VALUES)


def _check(engine: str, rows: dict[int, dict[str, Any]]) -> None:
    assert sorted(rows) == list(range(len(VALUES))), f"{engine}: offsets read {sorted(rows)}"
    wrong = []
    for offset, (case_id, expected) in enumerate(zip(IDS, EXPECTED, strict=True)):
        row = rows[offset]
        if isinstance(expected, str):
            ok = row["ok"] is False and row["reason"] == expected and row["detail"]
        else:
            ok = row["ok"] is True and row["reason"] is None and all(
                row[k] == v for k, v in expected.items())
        if not ok:
            wrong.append((case_id, expected, row))
    assert not wrong, f"{engine} disagrees with the contract cases: {wrong}"


def _spark_rows(spark: SparkSession, stack: Settings, topic: str) -> dict[int, dict[str, Any]]:
    frame = (spark.read.format("kafka")
             .options(**kafka.spark_options(stack))
             .option("subscribe", topic)
             .option("startingOffsets", "earliest").option("endingOffsets", "latest").load()
             .select("partition", "offset", "timestamp", "key", "value"))
    frame = parse_records(frame)
    return {r["kafka_offset"]: {n: r[n] for n in NAMES} for r in frame.collect()}


def _flink_rows(stack: Settings, topic: str, unique: str) -> dict[int, dict[str, Any]]:
    t_env = flink_table_env(stack, streaming=False)
    contract_udf.register(t_env)
    t_env.execute_sql(kafka_source_ddl(
        "src", "`value` BYTES, `offset` BIGINT METADATA VIRTUAL",
        topic=topic, connection=kafka.flink_properties(stack), group_id=f"it-contract-{unique}",
        value_format="raw", bounded=True,
    ))
    fields = ", ".join(f"`{name}`" for name in NAMES)
    table = t_env.sql_query(
        f"SELECT `offset`, {fields} FROM ({contract_udf.parsed_sql('src', keep=('offset',))})")
    rows = {}
    with table.execute().collect() as results:
        for row in results:
            rows[row[0]] = dict(zip(NAMES, list(row)[1:], strict=True))
    return rows


def test_spark_and_flink_apply_the_same_contract(
    spark: SparkSession, stack: Settings, topic: str, unique: str
) -> None:
    spark_rows = _spark_rows(spark, stack, topic)
    flink_rows = _flink_rows(stack, topic, unique)
    _check("spark", spark_rows)
    _check("flink", flink_rows)
    for offset, case_id in enumerate(IDS):
        assert spark_rows[offset] == flink_rows[offset], case_id
    # Decimals arrive exact in both (no float anywhere on the way).
    assert isinstance(flink_rows[0]["price"], Decimal)
    assert flink_rows[0]["price"] == spark_rows[0]["price"] == Decimal("64250.12")


def test_the_fast_paths_never_judge_otherwise_than_the_contract(
    spark: SparkSession, stack: Settings, unique: str
) -> None:
    """Spark's JVM fast path (a regex in SQL) and Flink's (speed_layer/jvm), each with
    Python for the rest, on the messages that probe the canonical form's edges."""
    samples: list[bytes | None] = list(fast_path_samples())
    name = _send(stack, f"it-contract-edges-{unique}", samples)
    expected = {i: dict(zip(NAMES, verdict(value), strict=True))
                for i, value in enumerate(samples)}
    for engine, rows in (("spark", _spark_rows(spark, stack, name)),
                         ("flink", _flink_rows(stack, name, f"edges-{unique}"))):
        wrong = [(samples[i], rows.get(i), want) for i, want in expected.items()
                 if rows.get(i) != want]
        assert not wrong, f"{engine}: {len(wrong)} of {len(samples)} differ, e.g. {wrong[:3]}"


def test_hostile_messages_with_odd_keys_and_headers_get_pythons_verdict_in_both_engines(
    spark: SparkSession, stack: Settings, unique: str
) -> None:
    """The fuzz test's hostile values, each in every field of a valid message, random
    bytes, and tombstones, sent with null, binary and 5 kB keys and with headers: both
    engines read every record and give each the verdict Python gives its value."""
    samples = engine_sample()
    name = _send(stack, f"it-contract-fuzz-{unique}", samples, odd_records=True)
    expected = {i: dict(zip(NAMES, verdict(value), strict=True))
                for i, value in enumerate(samples)}
    assert {e["ok"] for e in expected.values()} == {True, False}
    for engine, rows in (("spark", _spark_rows(spark, stack, name)),
                         ("flink", _flink_rows(stack, name, f"fuzz-{unique}"))):
        assert len(rows) == len(samples), f"{engine} read {len(rows)} of {len(samples)}"
        wrong = [(samples[i], rows.get(i), want) for i, want in expected.items()
                 if rows.get(i) != want]
        assert not wrong, f"{engine}: {len(wrong)} of {len(samples)} differ, e.g. {wrong[:2]}"
