"""Flink SQL DDL for the speed layer's Kafka endpoints.

The sink side is Kafka with Flink's exactly-once (transactional) delivery: records
become visible to read_committed consumers when the checkpoint that covers them
completes. speed_layer.delta_committer moves them into Delta from there.
"""

from __future__ import annotations

from collections.abc import Mapping


def _with(options: Mapping[str, str]) -> str:
    def quoted(text: str) -> str:
        return "'" + text.replace("'", "''") + "'"

    return ",\n  ".join(f"{quoted(k)} = {quoted(v)}" for k, v in options.items())


def kafka_source_ddl(
    name: str,
    columns: str,
    *,
    topic: str,
    connection: Mapping[str, str],
    group_id: str,
    value_format: str = "json",
    bounded: bool = False,
    resume_group: bool = False,
    extra: Mapping[str, str] | None = None,
) -> str:
    """CREATE TEMPORARY TABLE for a Kafka topic read from the earliest offset.

    `bounded` stops at the offsets that are latest when the job starts (batch-like runs).
    `resume_group`: without checkpointed offsets, start where `group_id` last committed
    (Flink commits on each completed checkpoint), the earliest offset if it never did.
    `connection`: the connector's Kafka properties (infra.kafka.flink_properties).
    """
    options = {
        "connector": "kafka",
        "topic": topic,
        **connection,
        "properties.group.id": group_id,
        "properties.isolation.level": "read_committed",
        "scan.startup.mode": "group-offsets" if resume_group else "earliest-offset",
        **({"properties.auto.offset.reset": "earliest"} if resume_group else {}),
        "format": value_format,
        **({"scan.bounded.mode": "latest-offset"} if bounded else {}),
        **(extra or {}),
    }
    return f"CREATE TEMPORARY TABLE {name} (\n  {columns}\n) WITH (\n  {_with(options)}\n)"


def kafka_exactly_once_sink_ddl(
    name: str,
    columns: str,
    *,
    topic: str,
    connection: Mapping[str, str],
    transactional_id_prefix: str,
    extra: Mapping[str, str] | None = None,
) -> str:
    """CREATE TEMPORARY TABLE for a Kafka topic written in transactions, one per checkpoint."""
    options = {
        "connector": "kafka",
        "topic": topic,
        **connection,
        "format": "json",
        "json.encode.decimal-as-plain-number": "true",
        "sink.delivery-guarantee": "exactly-once",
        "sink.transactional-id-prefix": transactional_id_prefix,
        # Must exceed the checkpoint interval plus recovery time; below the broker's
        # transaction.max.timeout.ms (15 min in infra/kafka/server.properties.template).
        "properties.transaction.timeout.ms": "600000",
        **(extra or {}),
    }
    return f"CREATE TEMPORARY TABLE {name} (\n  {columns}\n) WITH (\n  {_with(options)}\n)"
