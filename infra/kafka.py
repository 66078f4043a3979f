"""Every Kafka client Concord builds, built here, with the connection settings in one place.

Roles (quix-streams keeps one module per role; here they are few enough for one):
- `admin`, `consumer`, `producer`: kafka-python clients (admin work, offset reads,
  reconcile's reads, small producers);
- `confluent_producer`: librdkafka, for `concord produce` (BENCHMARKS: 6x kafka-python);
- `confluent_consumer`: librdkafka, for the speed layer's Delta committers (it fetches
  ahead: a record is in hand as soon as its transaction commits);
- `spark_options`, `flink_properties`: the same connection for the engines' Kafka
  connectors (Java client properties with the connector's prefix);
- `ready`, `ensure_topic`, `offset_range`, `end_offsets`, `committed_offsets`,
  `group_lag`: what the stack, the status report and the layers ask of the broker.

Connection settings: `CONCORD_KAFKA_BOOTSTRAP` and, for an external cluster, the
security settings `CONCORD_KAFKA_SECURITY_PROTOCOL` (PLAINTEXT, SSL, SASL_PLAINTEXT,
SASL_SSL), `CONCORD_KAFKA_SASL_MECHANISM` (PLAIN, SCRAM-SHA-256/512),
`CONCORD_KAFKA_SASL_USERNAME`, `CONCORD_KAFKA_SASL_PASSWORD` and `CONCORD_KAFKA_SSL_CAFILE`
(PEM). Each client form below spells them in its own library's words.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from infra.processes import port_in_use
from shared.config import Settings

if TYPE_CHECKING:
    from confluent_kafka import Consumer as ConfluentConsumer
    from confluent_kafka import Producer as ConfluentProducer
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

_JAAS_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}


def _password(settings: Settings) -> str | None:
    secret = settings.kafka_sasl_password
    return None if secret is None else secret.get_secret_value()


# --- one connection, in each library's words ------------------------------------------


def kafka_python_config(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of every kafka-python client: servers and security."""
    config: dict[str, Any] = {"bootstrap_servers": settings.bootstrap_servers,
                              "security_protocol": settings.kafka_security_protocol}
    if settings.kafka_sasl_mechanism is not None:
        config.update(sasl_mechanism=settings.kafka_sasl_mechanism,
                      sasl_plain_username=settings.kafka_sasl_username,
                      sasl_plain_password=_password(settings))
    if settings.kafka_ssl_cafile is not None:
        config["ssl_cafile"] = str(settings.kafka_ssl_cafile)
    return config


def librdkafka_config(settings: Settings) -> dict[str, Any]:
    """Configuration of a confluent-kafka (librdkafka) client: servers and security."""
    config: dict[str, Any] = {"bootstrap.servers": settings.bootstrap_servers,
                              "security.protocol": settings.kafka_security_protocol}
    if settings.kafka_sasl_mechanism is not None:
        config.update({"sasl.mechanisms": settings.kafka_sasl_mechanism,
                       "sasl.username": settings.kafka_sasl_username,
                       "sasl.password": _password(settings)})
    if settings.kafka_ssl_cafile is not None:
        config["ssl.ca.location"] = str(settings.kafka_ssl_cafile)
    return config


def java_properties(settings: Settings) -> dict[str, str]:
    """The Java client's properties (what Spark's and Flink's Kafka connectors pass on)."""
    props = {"bootstrap.servers": settings.bootstrap_servers,
             "security.protocol": settings.kafka_security_protocol}
    mechanism = settings.kafka_sasl_mechanism
    if mechanism is not None:
        user, password = (_jaas_quote(settings.kafka_sasl_username or ""),
                          _jaas_quote(_password(settings) or ""))
        props["sasl.mechanism"] = mechanism
        props["sasl.jaas.config"] = (f'{_JAAS_MODULES[mechanism]} required '
                                     f'username="{user}" password="{password}";')
    if settings.kafka_ssl_cafile is not None:
        props["ssl.truststore.type"] = "PEM"
        props["ssl.truststore.location"] = str(settings.kafka_ssl_cafile)
    return props


def _jaas_quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def spark_options(settings: Settings) -> dict[str, str]:
    """Options of Spark's Kafka source (`kafka.`-prefixed client properties)."""
    return {f"kafka.{k}": v for k, v in java_properties(settings).items()}


def flink_properties(settings: Settings) -> dict[str, str]:
    """Options of Flink's Kafka SQL connector (`properties.`-prefixed client properties)."""
    return {f"properties.{k}": v for k, v in java_properties(settings).items()}


# --- clients --------------------------------------------------------------------------


def admin(settings: Settings, **options: Any) -> KafkaAdminClient:
    from kafka import KafkaAdminClient

    return KafkaAdminClient(**kafka_python_config(settings), **options)


def consumer(settings: Settings, **options: Any) -> KafkaConsumer:
    """A kafka-python consumer; `options` are the role's own (group, isolation, ...)."""
    from kafka import KafkaConsumer

    return KafkaConsumer(**kafka_python_config(settings), **options)


def producer(settings: Settings, **options: Any) -> KafkaProducer:
    """A kafka-python producer, idempotent with acks=all unless `options` say otherwise."""
    from kafka import KafkaProducer

    return KafkaProducer(**{**kafka_python_config(settings), "acks": "all",
                            "enable_idempotence": True, **options})


def confluent_producer(settings: Settings, **options: Any) -> ConfluentProducer:
    """A librdkafka producer, idempotent with acks=all; `options` in librdkafka's words."""
    from confluent_kafka import Producer

    return Producer({**librdkafka_config(settings), "enable.idempotence": True, "acks": "all",
                     **options})


def confluent_consumer(settings: Settings, **options: Any) -> ConfluentConsumer:
    """A librdkafka consumer (it fetches ahead on its own threads: a poll returns what has
    arrived at once); `options` in librdkafka's words. No offsets are committed to
    Kafka unless `options` say so."""
    from confluent_kafka import Consumer

    return Consumer({**librdkafka_config(settings), "enable.auto.commit": False,
                     "enable.auto.offset.store": False, **options})


# --- what the stack and the layers ask of the broker ----------------------------------


def ready(settings: Settings) -> bool:
    """Real readiness: the broker answers a metadata request."""
    # No listener at all: say so now, not after the client's 30 s bootstrap timeout.
    host, _, port = settings.bootstrap_servers.split(",")[0].rpartition(":")
    if not port_in_use(int(port), host):
        return False
    client = admin(settings, request_timeout_ms=3000, client_id="concord-probe")
    try:
        client.list_topics()
        return True
    finally:
        client.close()


def brokers(settings: Settings, timeout_s: float = 5.0) -> list[int]:
    """The ids of the brokers the cluster's metadata lists now."""
    from confluent_kafka.admin import AdminClient

    client = AdminClient({**librdkafka_config(settings), "client.id": "concord-probe"})
    return sorted(client.list_topics(timeout=timeout_s).brokers)


def wait_for_brokers(settings: Settings, n: int, timeout_s: float) -> None:
    """Wait until `n` brokers are registered (a multi-node KRaft cluster forms once a
    controller majority runs); raise a clear error after `timeout_s`."""
    import time

    deadline = time.monotonic() + timeout_s
    seen: list[int] = []
    while time.monotonic() < deadline:
        try:
            seen = brokers(settings)
        except Exception:  # noqa: BLE001 - not formed yet: ask again
            seen = []
        if len(seen) >= n:
            return
        time.sleep(1)
    raise RuntimeError(f"Kafka: {len(seen)} of {n} brokers registered after {timeout_s:.0f} s "
                       f"(ids {seen}); see the brokers' logs under $CONCORD_HOME/logs/kafka-*")


def ensure_topic(settings: Settings, topic: str, partitions: int) -> bool:
    """Create `topic` if missing; False when it existed already."""
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    client = admin(settings)
    try:
        if topic in client.list_topics():
            return False
        try:
            client.create_topics([NewTopic(topic, partitions, settings.kafka_replication)])
        except TopicAlreadyExistsError:
            return False
        return True
    finally:
        client.close()


def offset_range(settings: Settings, topic: str) -> tuple[dict[int, int], dict[int, int]]:
    """(first offset still in Kafka, next offset to be written) per partition of `topic`;
    raises when the topic does not exist."""
    from kafka import TopicPartition

    client = consumer(settings)
    try:
        parts = client.partitions_for_topic(topic)
        if not parts:
            raise RuntimeError(f"topic {topic!r} does not exist")
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        begin = {tp.partition: int(o) for tp, o in client.beginning_offsets(tps).items()}
        end = {tp.partition: int(o) for tp, o in client.end_offsets(tps).items()}
        return begin, end
    finally:
        client.close()


def end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    """The next offset to be written per partition of `topic` ({} when it does not exist)."""
    from kafka import TopicPartition

    client = consumer(settings, request_timeout_ms=5000)
    try:
        parts = client.partitions_for_topic(topic) or set()
        ends = client.end_offsets([TopicPartition(topic, p) for p in parts])
        return {tp.partition: int(o) for tp, o in ends.items()}
    finally:
        client.close()


def committed_offsets(settings: Settings, group: str, topic: str) -> dict[int, int] | None:
    """The offsets `group` committed on `topic`, per partition; None when it has none."""
    from kafka import TopicPartition

    client = consumer(settings, group_id=group, enable_auto_commit=False)
    try:
        parts = client.partitions_for_topic(topic) or set()
        found = {p: client.committed(TopicPartition(topic, p)) for p in sorted(parts)}
    finally:
        client.close()
    out = {p: int(o) for p, o in found.items() if o is not None}
    return out or None


def lag(ends: Mapping[int, int], positions: Mapping[int, int]) -> int:
    """Messages between `positions` (per partition; 0 where absent) and `ends`."""
    return sum(max(0, end - positions.get(p, 0)) for p, end in ends.items())


def oldest_unread_timestamp(settings: Settings, topic: str, positions: Mapping[int, int],
                            ends: Mapping[int, int], timeout_s: float = 2.0) -> float | None:
    """Kafka timestamp (epoch seconds) of the oldest message at or after `positions` (per
    partition; 0 where absent) and before `ends`: how old what a reader has still to
    read is. None when nothing is unread (or it could not be read within `timeout_s`)."""
    from confluent_kafka import TopicPartition

    behind = {p: positions.get(p, 0) for p, end in ends.items() if end > positions.get(p, 0)}
    if not behind:
        return None
    # A position the retention already deleted: the oldest message still there.
    client = confluent_consumer(settings, **{"group.id": "concord-status",
                                             "enable.partition.eof": False,
                                             "auto.offset.reset": "earliest"})
    try:
        client.assign([TopicPartition(topic, p, offset) for p, offset in behind.items()])
        found: dict[int, float] = {}
        deadline = time.monotonic() + timeout_s
        while len(found) < len(behind) and (left := deadline - time.monotonic()) > 0:
            for record in client.consume(len(behind), timeout=left):
                partition = record.partition()
                if record.error() is None and partition is not None and partition not in found:
                    found[partition] = record.timestamp()[1] / 1000
                    client.pause([TopicPartition(topic, partition)])
        return min(found.values(), default=None)
    finally:
        client.close()


def group_lag(settings: Settings, group: str, topic: str) -> int:
    """Messages of `topic` past what `group` committed (all partitions)."""
    return lag(end_offsets(settings, topic), committed_offsets(settings, group, topic) or {})
