from __future__ import annotations

import pytest

from infra.setup import _artifact_base


@pytest.mark.parametrize(
    ("jar", "base"),
    [
        ("jackson-core-2.13.5.jar", "jackson-core"),
        ("delta-spark_4.2_2.13-4.4.0.jar", "delta-spark_4.2_2.13"),
        ("spark-sql-kafka-0-10_2.13-4.2.0.jar", "spark-sql-kafka-0-10_2.13"),
        ("zstd-jni-1.5.7-3.jar", "zstd-jni"),
        ("unitycatalog-client-0.6.0.jar", "unitycatalog-client"),
    ],
)
def test_artifact_base_strips_the_version(jar: str, base: str) -> None:
    assert _artifact_base(jar) == base


def test_kafka_cluster_ids_never_look_like_options() -> None:
    from infra.services import _kafka_cluster_id

    ids = {_kafka_cluster_id() for _ in range(5000)}
    assert len(ids) == 5000
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
