"""The one typed configuration of Concord.

Every knob is a field here, read from a `CONCORD_<FIELD>` environment variable
(upper case) when the settings object is built, never at import time. Local
defaults need no configuration; production changes only these variables.
`concord config` prints the effective values and where each may be overridden.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    """Effective configuration; frozen so that no layer changes it behind another's back."""

    model_config = SettingsConfigDict(env_prefix="CONCORD_", frozen=True, extra="ignore")

    # --- where state lives ---------------------------------------------------------
    home: Path = Field(
        default=REPO_ROOT / ".concord",
        description="All runtime state: pid files, logs, engine data, checkpoints, the lake.",
    )
    artifacts: Path = Field(
        default=REPO_ROOT / ".artifacts",
        description="JVM artifacts resolved by `make setup` (jars, Trino server, JDKs).",
    )
    lake_uri: str | None = Field(
        default=None,
        description="Root of the Delta lake. Default: file://$CONCORD_HOME/lake. "
        "Production: an object store URI such as s3://bucket/lake.",
    )

    # --- profile -----------------------------------------------------------------------
    profile: Literal["local", "cluster"] = Field(
        default="local",
        description="local: one process per engine. cluster: the engines' own distributed "
        "modes on this host (README 'Scaling out'): 3 Kafka brokers (KRaft, replication 3, "
        "min.insync.replicas 2), a Spark standalone master with 2 workers, a Flink session "
        "cluster (a JobManager, 2 TaskManagers; the speed job at parallelism 2), a Trino "
        "worker beside the coordinator, a Hive metastore on PostgreSQL for Trino's lake "
        "catalog; ports from CONCORD_CLUSTER_PORT_BASE.",
    )
    cluster_port_base: int = Field(
        default=19000, ge=1024, le=65000,
        description="The cluster profile's first port: its servers listen on the next 100 "
        "(127.0.0.1 only).",
    )

    # --- Kafka -------------------------------------------------------------------------
    kafka_bootstrap: str | None = Field(
        default=None,
        description="Bootstrap servers of an external Kafka cluster. When set, `concord up` "
        "does not start a local broker. Default: 127.0.0.1:$CONCORD_KAFKA_PORT.",
    )
    kafka_port: int = Field(default=9092, description="Local broker port (127.0.0.1 only).")
    kafka_controller_port: int = Field(default=9093, description="Local KRaft controller port.")
    kafka_heap: str = Field(default="768m", description="Heap of the local Kafka broker.")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT",
        description="How every Kafka client (producers, consumers, admin, Spark, Flink) talks "
        "to an external cluster: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL. The local "
        "broker speaks PLAINTEXT on 127.0.0.1.",
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        default=None, description="SASL mechanism (with SASL_*): PLAIN, SCRAM-SHA-256 or "
        "SCRAM-SHA-512.")
    kafka_sasl_username: str | None = Field(default=None, description="SASL user name.")
    kafka_sasl_password: SecretStr | None = Field(
        default=None, description="SASL password (never printed).")
    kafka_ssl_cafile: Path | None = Field(
        default=None, description="PEM file of the CA(s) that signed the brokers' "
        "certificates (with SSL / SASL_SSL); default: the system's trust store.")
    topic: str = Field(default="trades", description="Topic the trades flow through.")
    topic_partitions: int = Field(default=4, ge=1, description="Partitions of the trades topic.")

    # --- Trino ---------------------------------------------------------------------------
    trino_url: str | None = Field(
        default=None,
        description="URL of an external Trino coordinator (https://...). When set, `concord "
        "up` does not start a local one. Default: https://127.0.0.1:$CONCORD_TRINO_HTTPS_PORT.",
    )
    trino_port: int = Field(default=8080, description="Local Trino HTTP port (127.0.0.1 only): "
                            "health checks and Trino's internal traffic; no queries.")
    trino_https_port: int = Field(default=8443, description="Local Trino HTTPS port "
                                  "(127.0.0.1 only): queries, with a password.")
    trino_heap: str = Field(default="3G", description="Heap of the local Trino coordinator.")
    trino_nice: int = Field(
        default=5, ge=0, le=19,
        description="Niceness of the local Trino coordinator: on a box it shares with the "
        "speed job, queries yield to the stream (a starved speed job makes every answer "
        "stale: BENCHMARKS.md, 'Freshness'); the batch commands share the rest with it "
        "(CONCORD_BATCH_NICE).",
    )
    trino_user: str = Field(
        default="ops",
        description="Trino user (role) for this process: ops (the platform's jobs), analyst or "
        "desk; its password is read from $CONCORD_HOME/secrets/trino-users.json.",
    )
    catalog: str = Field(default="lake", description="Trino catalog of the Delta lake.")
    metastore_uri: str | None = Field(
        default=None,
        description="thrift://host:port of a Hive metastore for Trino's lake catalog. "
        "Default: the cluster profile's own (Hive's standalone metastore on PostgreSQL); "
        "locally Trino's file metastore (single writer).")
    dashboard_port: int = Field(default=8050, description="`concord dashboard` port "
                                "(127.0.0.1 only).")

    # --- Spark ---------------------------------------------------------------------------
    spark_master: str = Field(
        default="local[2]", description="Spark master; production: spark://host:7077, yarn, k8s."
    )
    spark_driver_memory: str = Field(default="1536m", description="Spark driver heap.")
    spark_shuffle_partitions: int = Field(
        default=4, ge=1, description="spark.sql.shuffle.partitions."
    )

    batch_nice: int = Field(
        default=5, ge=0, le=19,
        description="Niceness of the batch commands (their Spark JVM included): when they "
        "share the box with the speed job, the desk's freshness keeps priority (0: none). "
        "Equal to CONCORD_TRINO_NICE by default: queries and batch runs share what the "
        "speed job leaves (at 10, eight readers left a batch run 0.06 core and it never "
        "finished: BENCHMARKS.md, 'Soak').",
    )
    batch_lateness_s: int = Field(
        default=120, ge=0,
        description="`batch run` keeps the boundary this far behind the newest ingested "
        "trade, so windows still receiving trades are served from the speed layer.",
    )

    batch_every_s: int = Field(
        default=180, ge=1,
        description="Period of the demo's batch loop (`concord demo --every`); the yardstick "
        "of the boundary-age alert when no batch loop has said its own.",
    )

    speed_retention_s: int = Field(
        default=3600, ge=0,
        description="`batch run` deletes speed rows of windows older than this before the "
        "boundary (never any at or after the previous boundary); `concord reconcile` "
        "compares the layers over what is kept.",
    )

    # --- Flink ---------------------------------------------------------------------------
    flink_parallelism: int | None = Field(
        default=None, ge=1,
        description="Flink job parallelism. Default: 1 in a local mini-cluster, 2 on the "
        "cluster profile's session cluster (as many TaskManagers).")
    speed_dedupe_horizon_s: int = Field(
        default=600, ge=1,
        description="The speed layer drops a trade whose (exchange, symbol, trade_id) it saw "
        "less than this long ago; a later copy is counted (the batch layer then corrects "
        "it; `concord reconcile` explains the difference).",
    )
    flink_checkpoint_ms: int = Field(default=1000, ge=100, description="Checkpoint interval.")
    speed_emit_ms: int = Field(
        default=250, ge=100, le=60_000,
        description="The speed job emits partial rows for the trades of each slice of this "
        "many milliseconds of processing time; they reach the lake with the next "
        "checkpoint (BENCHMARKS.md: 250 ms with a 1 s checkpoint is the freshest through "
        "Trino on a small box; more frequent checkpoints mean more Delta commits, and "
        "each serving query pays for them).",
    )
    speed_compact_every_s: int = Field(
        default=30, ge=0,
        description="The speed job compacts its tables' small files this often (0: only "
        "`batch run` does, after publishing).",
    )
    flink_jobmanager: str | None = Field(
        default=None,
        description="host:port of a Flink cluster's REST endpoint for `flink run`; default: "
        "a local mini-cluster inside the job's own process.",
    )

    # --- Monitoring ----------------------------------------------------------------------
    monitoring: bool = Field(
        default=True,
        description="`concord up` also starts Prometheus (scraping the platform's exporter, "
        "Kafka, Trino and the speed job's Flink) and the platform's exporter; Kafka and the "
        "speed job then serve their engines' metrics (README 'Monitoring'). 0: none of it.",
    )
    metrics_port: int = Field(default=9464, description="The platform's exporter: "
                              "http://127.0.0.1:PORT/metrics (`concord status` as Prometheus "
                              "metrics).")
    prometheus_port: int = Field(default=9090, description="Prometheus (127.0.0.1 only): its "
                                 "web page and HTTP API.")
    flink_metrics_port: int = Field(default=9249, description="The speed job's Flink "
                                    "metrics (its Prometheus reporter).")
    kafka_metrics_port: int = Field(default=9404, description="The local broker's metrics "
                                    "(the Prometheus JMX exporter agent).")
    scrape_interval_s: int = Field(default=10, ge=1, le=300,
                                   description="How often Prometheus scrapes every target.")
    alert_for_s: int | None = Field(
        default=None, ge=0,
        description="Overrides every alert rule's `for:` (seconds); default: each rule's "
        "own (infra/monitoring/alerts.yml). Tests set it short.",
    )

    # --- Java ----------------------------------------------------------------------------
    java17_home: Path | None = Field(
        default=None, description="JDK 17 for Kafka, Flink and Spark (default: located)."
    )
    java_trino_home: Path | None = Field(
        default=None, description="JDK >= 24 for Trino (default: located)."
    )

    debug: bool = Field(default=False, description="Show stack traces on errors (1/true).")

    @model_validator(mode="after")
    def _kafka_security_is_complete(self) -> Self:
        sasl = {"CONCORD_KAFKA_SASL_MECHANISM": self.kafka_sasl_mechanism,
                "CONCORD_KAFKA_SASL_USERNAME": self.kafka_sasl_username,
                "CONCORD_KAFKA_SASL_PASSWORD": self.kafka_sasl_password}
        protocol = self.kafka_security_protocol
        if protocol.startswith("SASL_"):
            missing = [name for name, value in sasl.items() if value is None]
            if missing:
                raise ValueError(f"CONCORD_KAFKA_SECURITY_PROTOCOL={protocol} needs "
                                 f"{', '.join(missing)}")
        elif any(value is not None for value in sasl.values()):
            raise ValueError(f"CONCORD_KAFKA_SASL_* is set but CONCORD_KAFKA_SECURITY_PROTOCOL "
                             f"is {protocol}: set it to SASL_SSL or SASL_PLAINTEXT")
        if self.kafka_ssl_cafile is not None and not protocol.endswith("SSL"):
            raise ValueError(f"CONCORD_KAFKA_SSL_CAFILE is set but "
                             f"CONCORD_KAFKA_SECURITY_PROTOCOL is {protocol}")
        if protocol != "PLAINTEXT" and self.kafka_bootstrap is None:
            raise ValueError(f"CONCORD_KAFKA_SECURITY_PROTOCOL={protocol} applies to an external "
                             "cluster (CONCORD_KAFKA_BOOTSTRAP); the local broker is PLAINTEXT")
        return self

    # --- derived values ---------------------------------------------------------------------
    @property
    def kafka_brokers(self) -> int:
        """Brokers `concord up` runs: 3 in the cluster profile, else 1."""
        return 3 if self.profile == "cluster" else 1

    def kafka_node_ports(self, node: int) -> tuple[int, int]:
        """(broker port, controller port) of the local broker `node` (1-based)."""
        if self.profile == "cluster":
            return self.cluster_port_base + node - 1, self.cluster_port_base + 10 + node - 1
        return self.kafka_port, self.kafka_controller_port

    def kafka_node_metrics_port(self, node: int) -> int:
        """Where the local broker `node`'s JMX exporter agent serves its metrics."""
        if self.profile == "cluster":
            return self.cluster_port_base + 20 + node - 1
        return self.kafka_metrics_port

    @property
    def kafka_replication(self) -> int:
        """Replication factor of the topics the platform creates (the local brokers';
        an external cluster's default, 1 unless CONCORD_PROFILE says otherwise)."""
        return self.kafka_brokers

    @property
    def bootstrap_servers(self) -> str:
        if self.kafka_bootstrap:
            return self.kafka_bootstrap
        return ",".join(f"127.0.0.1:{self.kafka_node_ports(n)[0]}"
                        for n in range(1, self.kafka_brokers + 1))

    @property
    def spark_master_url(self) -> str:
        """The Spark master jobs go to: CONCORD_SPARK_MASTER, or in the cluster profile
        (CONCORD_SPARK_MASTER left at local[2]) its standalone master."""
        if self.profile == "cluster" and self.spark_master == "local[2]":
            return f"spark://127.0.0.1:{self.cluster_port_base + 30}"
        return self.spark_master

    @property
    def flink_cluster(self) -> str | None:
        """host:port of the Flink cluster's REST endpoint the speed job is submitted to:
        CONCORD_FLINK_JOBMANAGER, or the cluster profile's session cluster; None: a local
        mini-cluster inside the job's own process."""
        if self.flink_jobmanager:
            return self.flink_jobmanager
        if self.profile == "cluster":
            return f"127.0.0.1:{self.cluster_port_base + 51}"
        return None

    @property
    def speed_parallelism(self) -> int:
        """The speed job's parallelism (CONCORD_FLINK_PARALLELISM or the profile's)."""
        if self.flink_parallelism is not None:
            return self.flink_parallelism
        return 2 if self.profile == "cluster" else 1

    @property
    def hive_metastore_uri(self) -> str | None:
        """The Hive metastore Trino's lake catalog uses (None: Trino's file metastore)."""
        if self.metastore_uri:
            return self.metastore_uri
        if self.profile == "cluster":
            return f"thrift://127.0.0.1:{self.cluster_port_base + 61}"
        return None

    @property
    def trino_endpoint(self) -> str:
        """Where queries go: HTTPS, password authentication."""
        return self.trino_url or f"https://127.0.0.1:{self.trino_https_port}"

    @property
    def trino_health_url(self) -> str:
        """Where /v1/info answers without credentials (plain HTTP locally)."""
        return self.trino_url or f"http://127.0.0.1:{self.trino_port}"

    def as_env(self) -> dict[str, str]:
        """These settings as CONCORD_* variables, for a child process to load the same."""
        return {f"CONCORD_{name.upper()}": str(value.get_secret_value()
                                                 if isinstance(value, SecretStr) else value)
                for name, value in self.model_dump().items() if value is not None}

    @property
    def manages_kafka(self) -> bool:
        """True when `concord up` runs the broker itself (no external cluster configured)."""
        return self.kafka_bootstrap is None

    @property
    def manages_trino(self) -> bool:
        return self.trino_url is None

    @property
    def lake(self) -> str:
        """Lake root as a URI without trailing slash (file:///abs/path locally)."""
        if self.lake_uri:
            return self.lake_uri.rstrip("/")
        return (self.home / "lake").resolve().as_uri()

    @property
    def lake_is_local(self) -> bool:
        return self.lake.startswith("file:")

    @property
    def lake_path(self) -> Path:
        """Local filesystem path of the lake; only meaningful when lake_is_local."""
        return Path(self.lake.removeprefix("file://"))

    def table_uri(self, schema: str, table: str) -> str:
        """Location of a Delta table: <lake>/<schema>/<table>."""
        return f"{self.lake}/{schema}/{table}"

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"


def load_settings() -> Settings:
    """Build the settings from the environment, now (never at import time)."""
    return Settings()


def describe() -> list[tuple[str, str, str]]:
    """(environment variable, default, description) for every setting, for --help."""
    rows = []
    for name, field in Settings.model_fields.items():
        default = field.default
        shown = "" if default is None else str(default)
        rows.append((f"CONCORD_{name.upper()}", shown, field.description or ""))
    return rows
