from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.config import REPO_ROOT, Settings, describe


def test_local_defaults_need_no_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for var, _, _ in describe():
        monkeypatch.delenv(var, raising=False)
    s = Settings()
    assert s.home == REPO_ROOT / ".concord"
    assert s.bootstrap_servers == "127.0.0.1:9092"
    assert s.trino_endpoint == "https://127.0.0.1:8443"
    assert s.trino_health_url == "http://127.0.0.1:8080"
    assert s.trino_user == "ops"
    assert s.topic == "trades" and s.topic_partitions == 4
    assert s.manages_kafka and s.manages_trino
    assert s.lake == (REPO_ROOT / ".concord" / "lake").as_uri()


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CONCORD_HOME", str(tmp_path))
    monkeypatch.setenv("CONCORD_KAFKA_BOOTSTRAP", "k1:9092,k2:9092")
    monkeypatch.setenv("CONCORD_TRINO_URL", "https://trino.example:8443")
    monkeypatch.setenv("CONCORD_LAKE_URI", "s3://bucket/lake/")
    s = Settings()
    assert s.bootstrap_servers == "k1:9092,k2:9092" and not s.manages_kafka
    assert s.trino_endpoint == "https://trino.example:8443" and not s.manages_trino
    assert s.trino_health_url == "https://trino.example:8443"
    assert s.lake == "s3://bucket/lake" and not s.lake_is_local
    assert s.table_uri("raw", "trades") == "s3://bucket/lake/raw/trades"
    assert s.run_dir == tmp_path / "run"


def test_settings_are_frozen_and_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    s = Settings()
    with pytest.raises(ValidationError):
        s.topic = "other"  # type: ignore[misc]
    monkeypatch.setenv("CONCORD_TOPIC_PARTITIONS", "0")
    with pytest.raises(ValidationError):
        Settings()


def test_every_setting_is_documented() -> None:
    rows = describe()
    assert len(rows) == len(Settings.model_fields)
    assert all(var.startswith("CONCORD_") and desc for var, _, desc in rows)


def test_settings_round_trip_through_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.config import load_settings

    original = Settings(home=Path("/tmp/x"), kafka_port=1234, lake_uri="file:///tmp/lake",
                        spark_driver_memory="3g")
    for key, value in original.as_env().items():
        monkeypatch.setenv(key, value)
    assert load_settings() == original
