"""infra.kafka: the one connection, as each client library spells it (no broker needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from infra import kafka
from shared.config import Settings
from speed_layer.flink_io import kafka_source_ddl


def _external(**security: object) -> Settings:
    return Settings(kafka_bootstrap="k1:9093,k2:9093", **security)  # type: ignore[arg-type]


def test_local_broker_is_plaintext_everywhere() -> None:
    s = Settings(kafka_port=19092)
    assert kafka.kafka_python_config(s) == {"bootstrap_servers": "127.0.0.1:19092",
                                            "security_protocol": "PLAINTEXT"}
    assert kafka.librdkafka_config(s) == {"bootstrap.servers": "127.0.0.1:19092",
                                          "security.protocol": "PLAINTEXT"}
    assert kafka.spark_options(s) == {"kafka.bootstrap.servers": "127.0.0.1:19092",
                                      "kafka.security.protocol": "PLAINTEXT"}
    assert kafka.flink_properties(s) == {"properties.bootstrap.servers": "127.0.0.1:19092",
                                         "properties.security.protocol": "PLAINTEXT"}


def test_sasl_ssl_with_a_ca_in_each_library(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    s = _external(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-512",
                  kafka_sasl_username="desk", kafka_sasl_password='p"w\\d',
                  kafka_ssl_cafile=ca)
    assert kafka.kafka_python_config(s) == {
        "bootstrap_servers": "k1:9093,k2:9093", "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "desk",
        "sasl_plain_password": 'p"w\\d', "ssl_cafile": str(ca)}
    assert kafka.librdkafka_config(s) == {
        "bootstrap.servers": "k1:9093,k2:9093", "security.protocol": "SASL_SSL",
        "sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": "desk",
        "sasl.password": 'p"w\\d', "ssl.ca.location": str(ca)}
    assert kafka.java_properties(s) == {
        "bootstrap.servers": "k1:9093,k2:9093", "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        # The JAAS line quotes its values: a quote or backslash in them is escaped.
        "sasl.jaas.config": 'org.apache.kafka.common.security.scram.ScramLoginModule required '
                            'username="desk" password="p\\"w\\\\d";',
        "ssl.truststore.type": "PEM", "ssl.truststore.location": str(ca)}


def test_sasl_plain_uses_the_plain_login_module() -> None:
    s = _external(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="PLAIN",
                  kafka_sasl_username="u", kafka_sasl_password="it's")
    jaas = kafka.java_properties(s)["sasl.jaas.config"]
    assert jaas.startswith("org.apache.kafka.common.security.plain.PlainLoginModule required")
    # In Flink SQL the options are string literals: a quote in a value is doubled.
    ddl = kafka_source_ddl("t", "v BYTES", topic="trades", connection=kafka.flink_properties(s),
                           group_id="g")
    assert "'properties.sasl.jaas.config' = 'org.apache" in ddl
    assert 'password="it\'\'s";' in ddl


def test_the_password_is_never_printed_but_reaches_child_processes() -> None:
    s = _external(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="PLAIN",
                  kafka_sasl_username="u", kafka_sasl_password="secret")
    assert "secret" not in repr(s) and "secret" not in str(s.model_dump())
    assert s.as_env()["CONCORD_KAFKA_SASL_PASSWORD"] == "secret"


@pytest.mark.parametrize(("settings", "message"), [
    ({"kafka_bootstrap": "k:9093", "kafka_security_protocol": "SASL_SSL"},
     "needs CONCORD_KAFKA_SASL_MECHANISM, CONCORD_KAFKA_SASL_USERNAME, "
     "CONCORD_KAFKA_SASL_PASSWORD"),
    ({"kafka_bootstrap": "k:9093", "kafka_sasl_username": "u"},
     "CONCORD_KAFKA_SASL_* is set but CONCORD_KAFKA_SECURITY_PROTOCOL is PLAINTEXT"),
    ({"kafka_bootstrap": "k:9093", "kafka_ssl_cafile": "/ca.pem"},
     "CONCORD_KAFKA_SSL_CAFILE is set but"),
    ({"kafka_security_protocol": "SSL"}, "the local broker is PLAINTEXT"),
])
def test_incomplete_security_settings_say_what_is_missing(
    settings: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message.replace("*", r"\*")):
        Settings(**settings)  # type: ignore[arg-type]
