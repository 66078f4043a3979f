"""The cluster profile's engine clusters (CONCORD_PROFILE=cluster), all on 127.0.0.1.

The Kafka brokers are infra.services' (three nodes of one KRaft quorum). Here: a Spark
standalone master and SPARK_WORKERS workers, started from pyspark's own launcher
(`bin/spark-class`, the classes Spark's `sbin` scripts run), each worker offering one
core and 1536 MB to executors; `concord batch ...` then runs on it
(Settings.spark_master_url, infra.engines: one 1 GB single-core executor per worker).
Sized for a 2-core / 24 GiB box: the point is the distributed mode working, not speed.

A Trino worker beside the coordinator (which then only plans and schedules:
node-scheduler.include-coordinator=false), same catalog, internal traffic signed with
the coordinator's shared secret.

Ports, from CONCORD_CLUSTER_PORT_BASE (B): Kafka brokers B..B+2, controllers B+10..,
agents B+20..; Spark master B+30, its web UI B+31, worker n B+30+2n and B+31+2n; the
Trino worker B+40.
"""

from __future__ import annotations

import functools
import json
import os
import urllib.request
from pathlib import Path
from typing import Any

from infra.artifacts import metastore_home, pyflink_home, spark_home
from infra.java import java17, java_for_trino
from infra.processes import Service, ServiceError, port_in_use
from infra.security import cert_file, internal_secret, password, write_private
from infra.services import trino_command, write_catalog
from shared.config import Settings

SPARK_WORKERS = 2
SPARK_DAEMON_MEMORY = "384m"  # the master's and each worker's own heap
SPARK_WORKER_MEMORY = "1536m"  # what a worker offers its executors


def _spark_ports(settings: Settings, worker: int = 0) -> tuple[int, int]:
    """(port, web UI port) of the master (worker 0) or of worker n."""
    base = settings.cluster_port_base + 30 + 2 * worker
    return base, base + 1


def spark_master_service(settings: Settings) -> Service:
    return Service("spark-master", settings.run_dir,
                   settings.log_dir / "spark-master" / "stdout.log", _spark_ports(settings))


def spark_worker_service(settings: Settings, worker: int) -> Service:
    return Service(f"spark-worker-{worker}", settings.run_dir,
                   settings.log_dir / f"spark-worker-{worker}" / "stdout.log",
                   _spark_ports(settings, worker))


def spark_services(settings: Settings) -> list[Service]:
    return [spark_master_service(settings),
            *(spark_worker_service(settings, n) for n in range(1, SPARK_WORKERS + 1))]


def _spark_env(settings: Settings) -> dict[str, str]:
    return {**os.environ, "JAVA_HOME": str(java17(settings).home),
            "SPARK_HOME": str(spark_home()), "SPARK_LOCAL_IP": "127.0.0.1",
            "SPARK_DAEMON_MEMORY": SPARK_DAEMON_MEMORY,
            "SPARK_LOG_DIR": str(settings.log_dir / "spark-cluster")}


def spark_workers_alive(settings: Settings) -> int:
    """Workers the master lists as ALIVE (its web UI's JSON)."""
    url = f"http://127.0.0.1:{_spark_ports(settings)[1]}/json/"
    with urllib.request.urlopen(url, timeout=3) as resp:
        state = json.loads(resp.read())
    return sum(1 for w in state.get("workers", []) if w.get("state") == "ALIVE")


def _registered(settings: Settings, workers: int) -> bool:
    return spark_workers_alive(settings) >= workers


def start_spark(settings: Settings) -> int:
    """Start the master and the workers that are not running; wait until every worker
    has registered with the master."""
    spark_class = str(spark_home() / "bin" / "spark-class")
    env = _spark_env(settings)
    master, master_ui = _spark_ports(settings)
    master_svc = spark_master_service(settings)
    pid = master_svc.pid()
    if pid is None:
        pid = master_svc.start(
            [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
             "--port", str(master), "--webui-port", str(master_ui)],
            env=env, cwd=settings.data_dir, ready=lambda: port_in_use(master_ui),
            timeout_s=90)
    for n in range(1, SPARK_WORKERS + 1):
        svc = spark_worker_service(settings, n)
        if svc.pid() is not None:
            continue
        port, ui = _spark_ports(settings, n)
        work = settings.data_dir / f"spark-worker-{n}"
        work.mkdir(parents=True, exist_ok=True)
        svc.start(
            [spark_class, "org.apache.spark.deploy.worker.Worker",
             f"spark://127.0.0.1:{master}", "--host", "127.0.0.1", "--port", str(port),
             "--webui-port", str(ui), "--cores", "1", "--memory", SPARK_WORKER_MEMORY,
             "--work-dir", str(work)],
            env=env, cwd=work, ready=functools.partial(_registered, settings, n),
            timeout_s=90,
            # Executors are the worker's children and inherit its niceness: the batch
            # layer's work yields to the speed job here as the local driver's does
            # (CONCORD_BATCH_NICE; started without it, they ran at nice 0 beside the
            # driver's batch niceness).
            nice=settings.batch_nice)
    return pid


# --- Trino: a worker beside the coordinator ---------------------------------------------

TRINO_WORKER_HEAP = "2G"


def trino_worker_service(settings: Settings) -> Service:
    return Service("trino-worker", settings.run_dir,
                   settings.log_dir / "trino-worker" / "server.log",
                   (settings.cluster_port_base + 40,))


def trino_workers(settings: Settings) -> list[tuple[str, str]]:
    """(node id, state) of the workers the coordinator knows: system.runtime.nodes, asked
    over HTTPS as ops."""
    import requests
    import trino
    from trino.auth import BasicAuthentication

    session = requests.Session()
    session.trust_env = False
    session.verify = str(cert_file(settings))
    conn = trino.dbapi.connect(  # type: ignore[no-untyped-call]
        host="127.0.0.1", port=settings.trino_https_port, http_scheme="https", user="ops",
        auth=BasicAuthentication("ops", password(settings, "ops")), http_session=session,
        request_timeout=5, catalog="system")
    try:
        cur = conn.cursor()
        cur.execute("SELECT node_id, state FROM system.runtime.nodes WHERE NOT coordinator")
        return [(str(node), str(state)) for node, state in cur.fetchall()]
    finally:
        conn.close()


def _worker_active(settings: Settings) -> bool:
    return (TRINO_WORKER_ID, "active") in trino_workers(settings)


TRINO_WORKER_ID = "concord-worker-1"


def start_trino_worker(settings: Settings) -> int:
    """A Trino worker (the coordinator schedules every task on it); ready once the
    coordinator lists it active."""
    etc = settings.data_dir / "trino-worker" / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    port = trino_worker_service(settings).ports[0]
    write_private(etc / "config.properties", (
        "coordinator=false\n"
        f"http-server.http.port={port}\n"
        f"discovery.uri=http://127.0.0.1:{settings.trino_port}\n"
        "node.bind-ip=127.0.0.1\n"
        "node.internal-address=127.0.0.1\n"
        "query.max-memory-per-node=1GB\n"
        "memory.heap-headroom-per-node=512MB\n"
        f"internal-communication.shared-secret={internal_secret(settings)}\n"
    ).encode())
    write_catalog(settings, etc)
    data = settings.data_dir / "trino-worker" / "node"
    cmd = trino_command(settings, node_id=TRINO_WORKER_ID, heap=TRINO_WORKER_HEAP, etc=etc,
                        data=data, log_file=settings.log_dir / "trino-worker" / "trino.log")
    env = {**os.environ, "JAVA_HOME": str(java_for_trino(settings).home)}
    return trino_worker_service(settings).start(
        cmd, env=env, cwd=data, ready=functools.partial(_worker_active, settings),
        timeout_s=180, nice=settings.trino_nice)


# --- Flink: a session cluster (a JobManager and FLINK_TASKMANAGERS TaskManagers) -------

FLINK_TASKMANAGERS = 2
FLINK_SLOTS = 2  # per TaskManager: one TaskManager alone can hold a parallelism-2 job
JOB_NAME = "concord-speed"


def flink_rest_port(settings: Settings) -> int:
    return settings.cluster_port_base + 51


def flink_jobmanager_service(settings: Settings) -> Service:
    return Service("flink-jobmanager", settings.run_dir,
                   settings.log_dir / "flink-jobmanager" / "stdout.log",
                   (settings.cluster_port_base + 50, flink_rest_port(settings)))


def flink_taskmanager_service(settings: Settings, n: int) -> Service:
    return Service(f"flink-taskmanager-{n}", settings.run_dir,
                   settings.log_dir / f"flink-taskmanager-{n}" / "stdout.log", ())


def flink_services(settings: Settings) -> list[Service]:
    return [flink_jobmanager_service(settings),
            *(flink_taskmanager_service(settings, n)
              for n in range(1, FLINK_TASKMANAGERS + 1))]


def flink_config(settings: Settings) -> dict[str, str]:
    """The session cluster's configuration (flattened keys of config.yaml)."""
    import sys

    base = settings.cluster_port_base
    return {
        "jobmanager.rpc.address": "127.0.0.1",
        "jobmanager.rpc.port": str(base + 50),
        "jobmanager.bind-host": "127.0.0.1",
        "jobmanager.memory.process.size": "1024m",
        "jobmanager.execution.failover-strategy": "region",
        "rest.address": "127.0.0.1",
        "rest.bind-address": "127.0.0.1",
        "rest.port": str(flink_rest_port(settings)),
        "blob.server.port": str(base + 52),
        "taskmanager.bind-host": "127.0.0.1",
        "taskmanager.host": "127.0.0.1",
        # Each TaskManager takes a free port of these ranges.
        "taskmanager.rpc.port": f"{base + 53}-{base + 56}",
        "taskmanager.data.port": "0",
        "taskmanager.numberOfTaskSlots": str(FLINK_SLOTS),
        "taskmanager.memory.process.size": "2560m",
        # RocksDB (the dedupe state) and the Python workers live in managed memory.
        "taskmanager.memory.managed.size": "1024m",
        "parallelism.default": "2",
        # Slots spread over the TaskManagers (Flink's default fills one TaskManager's
        # slots first: at parallelism 2 both subtasks ran in one TaskManager and the
        # other idled, measured with JFR; BENCHMARKS.md, "The cluster profile").
        "taskmanager.load-balance.mode": "slots",
        # A TaskManager lost: the job restarts from its last checkpoint on the slots left.
        "restart-strategy.type": "fixed-delay",
        "restart-strategy.fixed-delay.attempts": "1000",
        "restart-strategy.fixed-delay.delay": "5 s",
        "heartbeat.timeout": "20000",
        "python.executable": sys.executable,
        "env.java.opts.all": _pyflink_java_opts(),
    }


def _pyflink_java_opts() -> str:
    """The module options PyFlink's own config.yaml gives every Flink JVM on Java 17."""
    for line in (pyflink_home() / "conf" / "config.yaml").read_text().splitlines():
        if line.strip().startswith("all:"):
            return line.split(":", 1)[1].strip()
    return ""


def _write_flink_dirs(settings: Settings) -> tuple[Path, Path]:
    """conf/ (config.yaml, log4j) and lib/ (PyFlink's jars and flink-python, which the
    TaskManagers need to run the contract's Python UDF) of the session cluster."""
    root = settings.data_dir / "flink-cluster"
    conf, lib = root / "conf", root / "lib"
    conf.mkdir(parents=True, exist_ok=True)
    lib.mkdir(parents=True, exist_ok=True)
    (conf / "config.yaml").write_text("".join(
        f"{key}: {json.dumps(value)}\n" for key, value in flink_config(settings).items()))
    for name in ("log4j-console.properties", "log4j.properties"):
        (conf / name).write_text((pyflink_home() / "conf" / name).read_text())
    home = pyflink_home()
    for jar in [*sorted((home / "lib").glob("*.jar")), *sorted((home / "opt").glob(
            "flink-python-*.jar"))]:
        link = lib / jar.name
        if not link.exists():
            link.symlink_to(jar)
    return conf, lib


def flink_rest(settings: Settings, path: str, method: str = "GET") -> Any:
    """A request to the Flink cluster's REST API (Settings.flink_cluster); its JSON."""
    url = f"http://{settings.flink_cluster}{path}"
    request = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310
        body = resp.read()
    return json.loads(body) if body else {}


ACTIVE_JOB_STATES = ("CREATED", "INITIALIZING", "RUNNING", "RESTARTING", "FAILING",
                     "CANCELLING", "RECONCILING", "SUSPENDED")


def flink_jobs(settings: Settings, name: str = JOB_NAME) -> list[dict[str, Any]]:
    """The cluster's jobs named `name` that have not ended (id, state, start time)."""
    jobs = flink_rest(settings, "/jobs/overview").get("jobs", [])
    return [{"id": j["jid"], "state": j["state"], "start_time": j.get("start-time")}
            for j in jobs if j.get("name") == name and j.get("state") in ACTIVE_JOB_STATES]


def cancel_flink_jobs(settings: Settings, name: str = JOB_NAME, timeout_s: float = 60) -> int:
    """Cancel the cluster's running jobs named `name` (a speed job whose process died
    left its job on the cluster: two would write the same transactions) and wait until
    they ended; their checkpoints are kept (RETAIN_ON_CANCELLATION). Returns how many."""
    import time

    jobs = flink_jobs(settings, name)
    for job in jobs:
        flink_rest(settings, f"/jobs/{job['id']}?mode=cancel", method="PATCH")
    deadline = time.monotonic() + timeout_s
    while flink_jobs(settings, name):
        if time.monotonic() > deadline:
            raise RuntimeError(f"Flink jobs {name!r} still running {timeout_s:.0f} s after "
                               f"cancelling them: {flink_jobs(settings, name)}")
        time.sleep(0.5)
    return len(jobs)


def _taskmanagers(settings: Settings) -> list[dict[str, Any]]:
    """The TaskManagers registered with the JobManager, as its REST API lists them."""
    taskmanagers: list[dict[str, Any]] = flink_rest(settings, "/taskmanagers").get(
        "taskmanagers", [])
    return taskmanagers


def flink_taskmanager_ids(settings: Settings) -> list[str]:
    """Resource ids of the TaskManagers registered with the JobManager."""
    return [tm["id"] for tm in _taskmanagers(settings)]


def flink_slots_in_use(settings: Settings) -> dict[str, int]:
    """Slots in use per registered TaskManager (resource id -> count)."""
    return {tm["id"]: tm["slotsNumber"] - tm["freeSlots"] for tm in _taskmanagers(settings)}


def _jobmanager_up(settings: Settings) -> bool:
    return "taskmanagers" in flink_rest(settings, "/overview")


def _registered_tm(settings: Settings, n: int) -> bool:
    return f"concord-tm-{n}" in flink_taskmanager_ids(settings)


def start_flink(settings: Settings) -> int:
    """Start the JobManager and the TaskManagers that are not running (PyFlink's own
    scripts, in the foreground under our supervision); wait until every TaskManager has
    registered."""
    conf, lib = _write_flink_dirs(settings)
    env = {**os.environ, "JAVA_HOME": str(java17(settings).home),
           "FLINK_CONF_DIR": str(conf), "FLINK_LIB_DIR": str(lib)}
    bin_dir = pyflink_home() / "bin"
    jm = flink_jobmanager_service(settings)
    pid = jm.pid()
    if pid is None:
        pid = jm.start(["bash", str(bin_dir / "jobmanager.sh"), "start-foreground"],
                       env={**env, "FLINK_LOG_DIR": str(jm.log_file.parent)},
                       cwd=conf.parent, ready=functools.partial(_jobmanager_up, settings),
                       timeout_s=120)
    for n in range(1, FLINK_TASKMANAGERS + 1):
        tm = flink_taskmanager_service(settings, n)
        if tm.pid() is not None:
            continue
        tm.start(["bash", str(bin_dir / "taskmanager.sh"), "start-foreground",
                  "-D", f"taskmanager.resource-id=concord-tm-{n}"],
                 env={**env, "FLINK_LOG_DIR": str(tm.log_file.parent)}, cwd=conf.parent,
                 ready=functools.partial(_registered_tm, settings, n), timeout_s=120)
    return pid


# --- the metastore: Hive's standalone metastore on a private PostgreSQL -----------------

POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")
METASTORE_HEAP = "512m"
METASTORE_DB = "metastore"
METASTORE_USER = "hive"  # (written out in the role check of start_postgres)
# Java 17 module openings Hive's own launch scripts pass (HIVE-26473: java.net for the
# schema and the server's reflection on collections).
METASTORE_OPENS = tuple(f"--add-opens=java.base/{pkg}=ALL-UNNAMED" for pkg in (
    "java.nio", "java.net", "java.lang", "java.util", "java.util.concurrent",
    "java.util.concurrent.atomic", "java.util.regex", "java.lang.reflect", "java.io"))


def postgres_port(settings: Settings) -> int:
    return settings.cluster_port_base + 60


def metastore_port(settings: Settings) -> int:
    """The port of Settings.hive_metastore_uri in the cluster profile."""
    return settings.cluster_port_base + 61


def postgres_service(settings: Settings) -> Service:
    return Service("postgres", settings.run_dir, settings.log_dir / "postgres" / "stdout.log",
                   (postgres_port(settings),))


def metastore_service(settings: Settings) -> Service:
    return Service("metastore", settings.run_dir,
                   settings.log_dir / "metastore" / "stdout.log", (metastore_port(settings),))


def _as_postgres(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run `cmd` as the `postgres` user (the
    Debian package's); as anyone else, as that user."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _give_to_postgres(path: Path) -> None:
    """As root, `path` becomes the `postgres` user's (the one the server runs as)."""
    import pwd

    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(path, user.pw_uid, user.pw_gid)


def _postgres_dir(settings: Settings) -> Path:
    """The cluster's data folder, owned by the user PostgreSQL runs as; its ancestors
    under CONCORD_HOME get the search bit for that user (no listing)."""
    import stat

    folder = settings.data_dir / "postgres"
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        _give_to_postgres(folder)
        folder.chmod(0o700)
        for parent in (settings.data_dir, settings.home):
            parent.chmod(parent.stat().st_mode | stat.S_IXOTH)
    return folder


def _postgres_ready(settings: Settings) -> bool:
    import subprocess

    done = subprocess.run([str(POSTGRES_BIN / "pg_isready"), "-q", "-h", "127.0.0.1", "-p",
                           str(postgres_port(settings))], check=False)
    return done.returncode == 0


def _psql(settings: Settings, *args: str, database: str = "postgres") -> str:
    import subprocess

    done = subprocess.run(_as_postgres([str(POSTGRES_BIN / "psql"), "-h", "127.0.0.1", "-p",
                                        str(postgres_port(settings)), "-U", "postgres",
                                        "-d", database, "-v", "ON_ERROR_STOP=1", "-qtA",
                                        *args]),
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ServiceError(f"psql {' '.join(args)[:200]}: {done.stderr.strip()}")
    return done.stdout


def start_postgres(settings: Settings) -> int:
    """A private PostgreSQL 15 (Debian's binaries) for the metastore: its own data folder,
    127.0.0.1 and a port of the cluster's block only; initialised once, with the
    metastore's role, database and schema (Hive's own SQL script)."""
    import subprocess

    if not (POSTGRES_BIN / "postgres").is_file():
        raise ServiceError(f"PostgreSQL 15 is not at {POSTGRES_BIN}: `make setup` installs "
                           "Debian's postgresql-15 package (apt-get install postgresql-15)")
    folder = _postgres_dir(settings)
    data = folder / "data"
    if not (data / "PG_VERSION").exists():
        done = subprocess.run(_as_postgres([str(POSTGRES_BIN / "initdb"), "-D", str(data),
                                            "-U", "postgres", "-A", "trust", "-E", "UTF8",
                                            "--locale=C"]),
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ServiceError(f"initdb failed: {done.stdout}{done.stderr}")
    conf = (f"listen_addresses = '127.0.0.1'\nport = {postgres_port(settings)}\n"
            f"unix_socket_directories = '{folder}'\nmax_connections = 50\n"
            "shared_buffers = 64MB\n")
    (data / "postgresql.auto.conf").write_text(conf)
    _give_to_postgres(data / "postgresql.auto.conf")
    pid = postgres_service(settings).start(
        _as_postgres([str(POSTGRES_BIN / "postgres"), "-D", str(data)]),
        env=dict(os.environ), cwd=folder, ready=functools.partial(_postgres_ready, settings),
        timeout_s=60)
    if not _psql(settings, "-c", "SELECT 1 FROM pg_roles WHERE rolname = 'hive'"):
        _psql(settings, "-c", f"CREATE ROLE {METASTORE_USER} LOGIN",
              "-c", f"CREATE DATABASE {METASTORE_DB} OWNER {METASTORE_USER} ENCODING 'UTF8' "
              "TEMPLATE template0")
    if not _psql(settings, "-c", "SELECT 1 FROM pg_tables WHERE tablename = 'VERSION'",
                 database=METASTORE_DB):
        scripts = metastore_home(settings) / "scripts" / "metastore" / "upgrade" / "postgres"
        schema = max(scripts.glob("hive-schema-4.*.postgres.sql"))
        _psql(settings, "-c", f"SET ROLE {METASTORE_USER}", "-f", str(schema),
              database=METASTORE_DB)
    return pid


def _metastore_site(settings: Settings) -> Path:
    conf = settings.data_dir / "metastore" / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    props = {
        "javax.jdo.option.ConnectionURL":
            f"jdbc:postgresql://127.0.0.1:{postgres_port(settings)}/{METASTORE_DB}",
        "javax.jdo.option.ConnectionDriverName": "org.postgresql.Driver",
        "javax.jdo.option.ConnectionUserName": METASTORE_USER,
        "javax.jdo.option.ConnectionPassword": "",
        "metastore.thrift.port": str(metastore_port(settings)),
        "metastore.thrift.bind.host": "127.0.0.1",
        "metastore.warehouse.dir": (settings.data_dir / "metastore" / "warehouse").as_uri(),
        # Trino needs tables as they were registered: no transformation (a single space;
        # an empty value keeps the default transformer).
        "metastore.metadata.transformer.class": " ",
        "metastore.expression.proxy":
            "org.apache.hadoop.hive.metastore.DefaultPartitionExpressionProxy",
        "metastore.task.threads.always": "org.apache.hadoop.hive.metastore.events.EventCleanerTask",
        "metastore.compactor.initiator.on": "false",
        "metastore.compactor.cleaner.on": "false",
        "metastore.housekeeping.threads.on": "false",
        "hive.metastore.event.db.notification.api.auth": "false",
        "metastore.server.min.threads": "4",
    }
    body = "".join(f"  <property><name>{k}</name><value>{v}</value></property>\n"
                   for k, v in props.items())
    (conf / "metastore-site.xml").write_text(
        f'<?xml version="1.0"?>\n<configuration>\n{body}</configuration>\n')
    home = metastore_home(settings)
    (conf / "metastore-log4j2.properties").write_text(
        (home / "conf" / "metastore-log4j2.properties").read_text())
    return conf


def start_metastore(settings: Settings) -> int:
    """Hive's standalone metastore (Thrift, 127.0.0.1) on the private PostgreSQL."""
    home = metastore_home(settings)
    conf = _metastore_site(settings)
    (settings.data_dir / "metastore" / "warehouse").mkdir(parents=True, exist_ok=True)
    classpath = os.pathsep.join([str(conf), str(home / "lib" / "*"),
                                 str(home.parent / "hadoop-lib" / "*")])
    cmd = [str(java17(settings).java), f"-Xmx{METASTORE_HEAP}", *METASTORE_OPENS,
           f"-Dhadoop.home.dir={settings.data_dir / 'metastore'}",
           f"-Dlog4j.configurationFile={conf / 'metastore-log4j2.properties'}",
           "-Dmetastore.root.logger=console", "-cp", classpath,
           "org.apache.hadoop.hive.metastore.HiveMetaStore"]
    env = {**os.environ, "JAVA_HOME": str(java17(settings).home), "METASTORE_HOME": str(home),
           "METASTORE_CONF_DIR": str(conf)}
    return metastore_service(settings).start(
        cmd, env=env, cwd=settings.data_dir / "metastore",
        ready=functools.partial(port_in_use, metastore_port(settings)), timeout_s=120)
