"""infra.services: the brokers' configuration, one node and the cluster profile's three."""

from __future__ import annotations

from pathlib import Path

from infra.monitoring import scrape_configs
from infra.services import _kafka_config, _kafka_ids, kafka_services
from shared.config import Settings


def _props(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines()
                if line and not line.startswith("#"))


def test_one_local_broker_is_its_own_quorum(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, kafka_port=19092, kafka_controller_port=19093)
    assert settings.bootstrap_servers == "127.0.0.1:19092"
    assert [s.name for s in kafka_services(settings)] == ["kafka"]
    props = _props(_kafka_config(settings))
    assert props["node.id"] == "1"
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:19093"
    assert props["default.replication.factor"] == "1" and props["min.insync.replicas"] == "1"


def test_the_cluster_profile_runs_three_brokers_replicating_three_times(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, profile="cluster", cluster_port_base=30000)
    assert settings.bootstrap_servers == "127.0.0.1:30000,127.0.0.1:30001,127.0.0.1:30002"
    assert settings.kafka_replication == 3
    services = kafka_services(settings)
    assert [s.name for s in services] == ["kafka-1", "kafka-2", "kafka-3"]
    assert services[1].ports == (30001, 30011, 30021)  # broker, controller, metrics
    props = _props(_kafka_config(settings, 2))
    assert props["node.id"] == "2"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:30001,CONTROLLER://127.0.0.1:30011"
    assert props["controller.quorum.bootstrap.servers"] == (
        "127.0.0.1:30010,127.0.0.1:30011,127.0.0.1:30012")
    for name in ("default.replication.factor", "offsets.topic.replication.factor",
                 "transaction.state.log.replication.factor"):
        assert props[name] == "3", name
    assert props["min.insync.replicas"] == "2" and props["transaction.state.log.min.isr"] == "2"
    assert props["log.dirs"] == str(tmp_path / "data" / "kafka-2" / "logs")
    # Every node is formatted for the same quorum: one cluster id, a directory id each,
    # kept across calls.
    ids = _kafka_ids(settings)
    assert ids == _kafka_ids(settings) and len(set(ids["directories"].values())) == 3
    # Prometheus scrapes every broker's agent.
    (kafka,) = [j for j in scrape_configs(settings, tmp_path / "pw") if j["job_name"] == "kafka"]
    assert kafka["static_configs"][0]["targets"] == [
        "127.0.0.1:30020", "127.0.0.1:30021", "127.0.0.1:30022"]
