"""Kafka round trip through the real broker that `concord up` starts."""

from __future__ import annotations

import time

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


def test_oldest_unread_timestamp_is_the_first_message_past_each_position(
    stack: Settings, unique: str
) -> None:
    """What `concord status` and the exporter give as a layer's lag in seconds."""
    topic = f"it-kafka-age-{unique}"
    ensure_topic(stack, topic, 2)
    producer = kafka.confluent_producer(stack)
    base = (int(time.time()) - 60) * 1000  # recent: no retention deletes them
    stamps = {0: [base, base + 500, base + 1000], 1: [base + 200, base + 900]}  # ms
    for partition, times in stamps.items():
        for ms in times:
            producer.produce(topic, b"x", partition=partition, timestamp=ms)
    assert producer.flush(30) == 0
    ends = kafka.end_offsets(stack, topic)
    assert ends == {0: 3, 1: 2}
    # partition 0 read up to offset 1 (its second message is next), partition 1 not at all
    assert kafka.oldest_unread_timestamp(stack, topic, {0: 1}, ends) == (base + 200) / 1000
    assert kafka.oldest_unread_timestamp(stack, topic, {0: 2, 1: 1}, ends) == (base + 900) / 1000
    assert kafka.oldest_unread_timestamp(stack, topic, ends, ends) is None  # nothing unread
