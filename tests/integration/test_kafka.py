"""Kafka round trip through the real broker that `concord up` starts."""

from __future__ import annotations

import pytest
from kafka import TopicPartition

from infra import kafka
from infra.kafka import ensure_topic
from shared.config import Settings

pytestmark = pytest.mark.integration


def test_broker_answers_metadata(stack: Settings) -> None:
    assert kafka.ready(stack)


def test_trades_topic_has_configured_partitions(stack: Settings) -> None:
    consumer = kafka.consumer(stack)
    try:
        assert consumer.partitions_for_topic(stack.topic) == set(range(stack.topic_partitions))
    finally:
        consumer.close()


def test_idempotent_round_trip_keeps_every_message_in_key_order(
    stack: Settings, unique: str
) -> None:
    topic = f"it-kafka-{unique}"
    assert ensure_topic(stack, topic, 3) is True
    assert ensure_topic(stack, topic, 3) is False  # idempotent
    sent = {f"k{i % 7}": [] for i in range(7)}  # type: dict[str, list[bytes]]
    producer = kafka.producer(stack)  # idempotent, acks=all
    for i in range(3000):
        key = f"k{i % 7}"
        value = f"message-{i}".encode()
        sent[key].append(value)
        producer.send(topic, key=key.encode(), value=value)
    producer.flush()
    producer.close()

    consumer = kafka.consumer(stack, auto_offset_reset="earliest", enable_auto_commit=False,
                              consumer_timeout_ms=5000)
    parts = [TopicPartition(topic, p) for p in range(3)]
    consumer.assign(parts)
    got: dict[str, list[bytes]] = {k: [] for k in sent}
    total = 0
    for record in consumer:
        got[record.key.decode()].append(record.value)
        total += 1
        if total == 3000:
            break
    end = consumer.end_offsets(parts)
    consumer.close()
    assert got == sent  # nothing lost, nothing doubled, per-key order kept
    assert sum(end.values()) == 3000
