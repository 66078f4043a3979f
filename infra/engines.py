"""Engine factories: the one place a SparkSession or a Flink TableEnvironment is built.

Layers never build their own engine sessions; they receive one from here (or a test
hands in its own). Both are built from the typed settings, with the jars `make setup`
resolved into the artifacts folder, so nothing is downloaded at run time.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from infra import artifacts
from infra.java import java17
from shared.config import Settings

# An executor's heap on a standalone cluster (each worker offers 1 core and 1536 MB).
SPARK_EXECUTOR_MEMORY = "1g"

if TYPE_CHECKING:
    from pyflink.table import TableEnvironment
    from pyspark.sql import SparkSession


def _use_java17(settings: Settings) -> None:
    # PySpark and PyFlink launch their JVM from JAVA_HOME of this process.
    os.environ["JAVA_HOME"] = str(java17(settings).home)
    # Loopback only: keep the driver from binding to (and warning about) eth0.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


def spark_session(settings: Settings, app_name: str = "concord") -> SparkSession:
    """A SparkSession with Delta Lake and the Kafka source, UTC, few shuffle partitions.

    The master is `CONCORD_SPARK_MASTER` (local[2] by default; a cluster URL in
    production). Extra jars go on the driver class path and, for cluster executors,
    in spark.jars.
    """
    from pyspark.sql import SparkSession

    _use_java17(settings)
    # Python workers run this interpreter (the venv with the contract code), not
    # whatever `python3` is first on PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    jar_paths = [str(p) for p in artifacts.jars(settings, "spark")]
    local_dirs = settings.data_dir / "spark"
    local_dirs.mkdir(parents=True, exist_ok=True)
    builder = (
        SparkSession.builder.master(settings.spark_master_url)
        .appName(app_name)
        .config("spark.jars", ",".join(jar_paths))
        .config("spark.driver.extraClassPath", os.pathsep.join(jar_paths))
        .config("spark.driver.memory", settings.spark_driver_memory)
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.local.dir", str(local_dirs))
        # Tables are addressed by path; the (unused) warehouse stays out of the cwd.
        .config("spark.sql.warehouse.dir", str(local_dirs / "warehouse"))
        .config("spark.ui.enabled", "false")
        # Stage progress bars redraw with \r: fine on a terminal, noise in a log file.
        .config("spark.ui.showConsoleProgress", str(sys.stderr.isatty()).lower())
        .config("spark.sql.shuffle.partitions", str(settings.spark_shuffle_partitions))
        # Delta rebuilds table state in this many tasks (default 50: mostly overhead here).
        .config("spark.databricks.delta.snapshotPartitions",
                str(settings.spark_shuffle_partitions))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config(
            "spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog"
        )
        # Exactness: fail instead of silently producing NULL on decimal overflow.
        .config("spark.sql.ansi.enabled", "true")
    )
    if settings.spark_master_url.startswith("spark://"):
        # A standalone cluster: one single-core executor per worker (infra.cluster).
        builder = (builder.config("spark.executor.memory", SPARK_EXECUTOR_MEMORY)
                   .config("spark.executor.cores", "1"))
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    return session


def flink_table_env(settings: Settings, *, streaming: bool = True) -> TableEnvironment:
    """A PyFlink TableEnvironment with the Kafka SQL connector, UTC, checkpointing on.

    Locally the job runs in a mini-cluster inside this process's JVM; with
    `CONCORD_FLINK_JOBMANAGER` set, or in the cluster profile, jobs are submitted to
    that cluster's REST endpoint instead (Settings.flink_cluster).
    """
    from pyflink.table import EnvironmentSettings, TableEnvironment

    _use_java17(settings)
    # Flink's own log (and RocksDB's, speed_layer.job) under $CONCORD_HOME/logs, not in
    # the pyflink package's folder, where every run would add to it.
    flink_logs = settings.log_dir / "flink"
    flink_logs.mkdir(parents=True, exist_ok=True)
    os.environ["FLINK_LOG_DIR"] = str(flink_logs)
    env_settings = (
        EnvironmentSettings.in_streaming_mode()
        if streaming
        else EnvironmentSettings.in_batch_mode()
    )
    t_env = TableEnvironment.create(env_settings)
    conf = t_env.get_config()
    jars = [*artifacts.jars(settings, "flink"), artifacts.speed_functions_jar(settings)]
    jar_uris = ";".join(p.resolve().as_uri() for p in jars)
    conf.set("pipeline.jars", jar_uris)
    conf.set("parallelism.default", str(settings.speed_parallelism))
    conf.set("table.local-time-zone", "UTC")
    # Python UDFs (the trade contract) run in this interpreter: the venv with the code.
    conf.set("python.executable", sys.executable)
    conf.set("python.client.executable", sys.executable)
    if streaming:
        conf.set("execution.checkpointing.interval", f"{settings.flink_checkpoint_ms}ms")
        conf.set("execution.checkpointing.mode", "EXACTLY_ONCE")
    if settings.flink_cluster:
        host, _, port = settings.flink_cluster.partition(":")
        conf.set("execution.target", "remote")
        conf.set("rest.address", host)
        conf.set("rest.port", port or "8081")
    return t_env
