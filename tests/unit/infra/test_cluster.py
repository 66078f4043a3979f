"""infra.cluster: the cluster profile's servers, their ports and where jobs go."""

from __future__ import annotations

from pathlib import Path

from infra.cluster import SPARK_WORKERS, spark_services
from shared.config import Settings


def test_spark_jobs_go_to_the_standalone_master_in_the_cluster_profile(tmp_path: Path) -> None:
    local = Settings(home=tmp_path)
    assert local.spark_master_url == "local[2]"
    cluster = Settings(home=tmp_path, profile="cluster", cluster_port_base=30000)
    assert cluster.spark_master_url == "spark://127.0.0.1:30030"
    # An explicit master wins over the profile's.
    assert Settings(home=tmp_path, profile="cluster",
                    spark_master="spark://example:7077").spark_master_url == "spark://example:7077"
    services = spark_services(cluster)
    assert [s.name for s in services] == ["spark-master", "spark-worker-1", "spark-worker-2"]
    assert len(services) == SPARK_WORKERS + 1
    ports = [p for s in services for p in s.ports]
    assert ports == list(range(30030, 30036)) and len(set(ports)) == len(ports)


def test_the_speed_job_goes_to_the_session_cluster_at_parallelism_2(tmp_path: Path) -> None:
    from infra.cluster import FLINK_SLOTS, FLINK_TASKMANAGERS, flink_config, flink_services

    local = Settings(home=tmp_path)
    assert local.flink_cluster is None and local.speed_parallelism == 1
    cluster = Settings(home=tmp_path, profile="cluster", cluster_port_base=30000)
    assert cluster.flink_cluster == "127.0.0.1:30051" and cluster.speed_parallelism == 2
    assert Settings(home=tmp_path, profile="cluster",
                    flink_parallelism=1).speed_parallelism == 1
    conf = flink_config(cluster)
    assert conf["rest.port"] == "30051" and conf["rest.bind-address"] == "127.0.0.1"
    assert conf["jobmanager.bind-host"] == conf["taskmanager.bind-host"] == "127.0.0.1"
    # One TaskManager lost, the other holds the whole job: it restarts from its checkpoint.
    assert FLINK_SLOTS >= cluster.speed_parallelism
    assert conf["restart-strategy.type"] == "fixed-delay"
    assert "--add-opens=java.base/java.lang=ALL-UNNAMED" in conf["env.java.opts.all"]
    names = [s.name for s in flink_services(cluster)]
    assert names == ["flink-jobmanager", *(f"flink-taskmanager-{n}"
                                           for n in range(1, FLINK_TASKMANAGERS + 1))]


def test_trinos_lake_catalog_uses_the_clusters_metastore(tmp_path: Path) -> None:
    from infra.cluster import metastore_port
    from infra.services import write_catalog

    local = Settings(home=tmp_path / "local")
    write_catalog(local, tmp_path / "etc-local")
    text = (tmp_path / "etc-local" / "catalog" / "lake.properties").read_text()
    assert "hive.metastore=file\n" in text and "hive.metastore.uri" not in text
    cluster = Settings(home=tmp_path / "cluster", profile="cluster", cluster_port_base=30000)
    assert cluster.hive_metastore_uri == f"thrift://127.0.0.1:{metastore_port(cluster)}"
    write_catalog(cluster, tmp_path / "etc-cluster")
    text = (tmp_path / "etc-cluster" / "catalog" / "lake.properties").read_text()
    assert "hive.metastore=thrift\nhive.metastore.uri=thrift://127.0.0.1:30061\n" in text
    assert "hive.metastore.catalog.dir" not in text
    assert "delta.register-table-procedure.enabled=true" in text
