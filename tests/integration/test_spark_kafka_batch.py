"""Spark reads a Kafka topic in batch: every record, with its partition and offset."""

from __future__ import annotations

from typing import Any

import pytest

from infra import kafka
from infra.kafka import ensure_topic
from shared.config import Settings

pytestmark = pytest.mark.integration


def test_spark_batch_read_sees_every_offset_once(
    stack: Settings, spark: Any, unique: str
) -> None:
    topic = f"it-spark-{unique}"
    ensure_topic(stack, topic, 4)
    producer = kafka.producer(stack)
    sent = {f"value-{i}".encode() for i in range(5000)}
    for i, value in enumerate(sorted(sent)):
        producer.send(topic, key=str(i % 11).encode(), value=value)
    producer.flush()
    producer.close()

    df = (
        spark.read.format("kafka")
        .options(**kafka.spark_options(stack))
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .option("endingOffsets", "latest")
        .load()
    )
    rows = df.select("partition", "offset", "value").collect()
    assert {bytes(r["value"]) for r in rows} == sent
    assert len(rows) == len(sent)
    # Offsets per partition are exactly 0..n-1: no gap, no repeat.
    by_part: dict[int, list[int]] = {}
    for r in rows:
        by_part.setdefault(r["partition"], []).append(r["offset"])
    for offsets in by_part.values():
        assert sorted(offsets) == list(range(len(offsets)))
