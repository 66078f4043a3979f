"""The long-running speed job: the Flink pipeline and the Delta committers, one process.

`concord speed start` runs `python -m speed_layer.job` detached (infra.processes), with
its log in $CONCORD_HOME/logs/speed/ and checkpoints in $CONCORD_HOME/data/speed/
checkpoints. Checkpoints are retained on cancellation and on failure; a start resumes
from the newest complete one (its source offsets, dedupe state and window state), so a
killed job restarted loses nothing and counts nothing twice: partial rows of seconds
after that checkpoint were in Kafka transactions that never committed.

The job writes $CONCORD_HOME/run/speed.json ({"state": "RUNNING", "job_id": ...,
"restored_from": ...}) once the Flink job runs; `concord speed status` reads it.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from infra.artifacts import flink_reporter_dir
from infra.cluster import JOB_NAME, cancel_flink_jobs
from infra.engines import flink_table_env
from infra.kafka import ensure_topic
from infra.monitoring import flink_reporter_options
from shared.config import Settings, load_settings
from shared.maintenance import compact
from shared.partials import partials_topic, rejects_topic
from shared.runstate import SPEED_METRICS, write_state
from shared.views import VIEWS
from speed_layer.delta_committer import DeltaCommitter
from speed_layer.pipeline import build, committers

GROUP_ID = "concord-speed"
DROP_UNMATCHED_FLAG = "--drop-unmatched-state"
COMPACT_MIN_FILES = 8
MANAGED_MEMORY = "1536m"


def checkpoint_dir(settings: Settings) -> Path:
    return settings.data_dir / "speed" / "checkpoints"


def status_file(settings: Settings) -> Path:
    return settings.run_dir / "speed.json"


def latest_checkpoint(settings: Settings) -> Path | None:
    """The newest complete checkpoint (a chk-N folder with _metadata), if any."""
    done = [p.parent for p in checkpoint_dir(settings).glob("*/chk-*/_metadata")]
    return max(done, key=lambda p: (p.stat().st_mtime, int(p.name.split("-")[1])), default=None)


def configure_state(conf: Any, settings: Settings) -> None:
    """The job's state backend (a TableConfig `conf`; bench.flink_baseline uses it too).

    The dedupe state holds every trade id of the horizon (10 min at 50k/s = 30M keys).
    On the heap each 1 s checkpoint would copy all of it; RocksDB checkpoints upload only
    the files written since the previous one. Nearly every lookup is of a trade id not
    seen yet: bloom filters answer those without reading each level's files.
    """
    conf.set("state.backend.type", "rocksdb")
    conf.set("execution.checkpointing.incremental", "true")
    conf.set("state.backend.rocksdb.use-bloom-filter", "true")
    # RocksDB's block cache and write buffers come out of the task's managed memory: 128 MB
    # by default in a local mini-cluster, 30% of it going to the Python worker. Past a
    # state size proportional to it the dedupe's lookups slowed to a crawl and the job
    # fell behind a 5,000/s stream: at ~0.6M trade ids with 128 MB, ~2.4M with 512 MB
    # (BENCHMARKS.md, "Freshness"). The horizon holds rate x CONCORD_SPEED_DEDUPE_HORIZON_S
    # ids: 3M at 5,000/s and 10 minutes.
    conf.set("taskmanager.memory.managed.size", MANAGED_MEMORY)
    # RocksDB's own LOG files: warnings only, in the job's logs (by default, INFO in the
    # Flink log folder: ~100 MB in a day of runs).
    rocksdb_logs = settings.log_dir / "speed" / "rocksdb"
    rocksdb_logs.mkdir(parents=True, exist_ok=True)
    conf.set("state.backend.rocksdb.log.dir", str(rocksdb_logs))
    conf.set("state.backend.rocksdb.log.level", "WARN_LEVEL")


def compact_all(sinks: list[DeltaCommitter]) -> None:
    """Compact each sink's table; a failure (say, a conflict with the compaction of a
    concurrent `batch run`) is logged and retried next time, never fatal."""
    for sink in sinks:
        try:
            compact(sink.table_uri, min_files=COMPACT_MIN_FILES)
        except Exception as exc:  # noqa: BLE001 - upkeep; the commits go on
            print(f"compaction of {sink.table_uri} skipped: {exc}", file=sys.stderr, flush=True)


def compactor(sinks: list[DeltaCommitter], every_s: float, stop: threading.Event
              ) -> threading.Thread:
    """A thread compacting the sinks' tables every `every_s` until `stop` is set.

    Beside the commits, not between them: a compaction (a rewrite, 0.1-0.5 s) in the
    committers' loop held every commit behind it (the freshness p99). delta-rs releases
    the GIL while it works, and a compaction's commit never conflicts with the
    committers' blind appends.
    """
    def run() -> None:
        while not stop.wait(every_s):
            compact_all(sinks)

    thread = threading.Thread(target=run, name="compactor", daemon=True)
    thread.start()
    return thread


def committer_metrics(sinks: list[DeltaCommitter]) -> dict[str, Any]:
    """What `concord status` and the exporter read of the committers (shared.runstate)."""
    return {"at": time.time(), "pid": os.getpid(),
            "committers": {"speed." + sink.table_uri.rstrip("/").rsplit("/", 1)[-1]:
                           sink.stats.as_dict() for sink in sinks}}


def main() -> int:
    settings = load_settings()
    views = list(VIEWS.values())
    ensure_topic(settings, partials_topic(settings), 1)
    ensure_topic(settings, rejects_topic(settings), 1)

    # The contract's Python worker in a process of its own: in PyFlink's default for a
    # local mini-cluster ("loopback") it runs on threads of this process and competes
    # with the committers for one GIL (catch-up 19.2k -> 22.1k trades/s, BENCHMARKS.md).
    os.environ["_python_worker_execution_mode"] = "process"
    reporter = flink_reporter_options(settings)
    if reporter:
        # A local mini-cluster finds metric reporters on the JVM's class path only (not in
        # plugins), and PyFlink's gateway adds $HADOOP_CLASSPATH to it: its one hook.
        os.environ["HADOOP_CLASSPATH"] = str(flink_reporter_dir(settings) / "*")
    t_env = flink_table_env(settings)
    conf = t_env.get_config()
    for key, value in reporter.items():
        conf.set(key, value)
    conf.set("execution.checkpointing.dir", checkpoint_dir(settings).resolve().as_uri())
    conf.set("execution.checkpointing.externalized-checkpoint-retention",
             "RETAIN_ON_CANCELLATION")
    conf.set("execution.checkpointing.num-retained", "3")
    configure_state(conf, settings)
    # The contract's Python worker gets rows in Arrow batches; hand over at least every
    # 100 ms (default 1 s) so a quiet stream is not held back.
    conf.set("python.fn-execution.bundle.time", "100")
    conf.set("pipeline.name", JOB_NAME)
    if settings.flink_cluster:
        # A job left on the cluster by a speed job process that died would write the same
        # transactions as this one: end it first (its checkpoints are kept).
        left = cancel_flink_jobs(settings)
        if left:
            print(f"cancelled {left} speed job(s) a dead process left on the Flink cluster",
                  flush=True)
    restored = latest_checkpoint(settings)
    if restored is not None:
        conf.set("execution.state-recovery.path", restored.resolve().as_uri())
        if DROP_UNMATCHED_FLAG in sys.argv[1:]:
            # The pipeline changed (an upgrade, a new view): operators without a match
            # in the checkpoint start empty; the Kafka source then resumes from the
            # offsets the job committed on its last checkpoint (pipeline.build).
            conf.set("execution.state-recovery.ignore-unclaimed-state", "true")
    result = build(t_env, settings, views, group_id=GROUP_ID).execute()
    client = result.get_job_client()
    assert client is not None
    sinks = committers(settings, views, app_id=GROUP_ID)

    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    status = status_file(settings)
    status.parent.mkdir(parents=True, exist_ok=True)
    status.write_text(json.dumps({
        "state": "RUNNING", "job_id": str(client.get_job_id()),
        "restored_from": str(restored) if restored else None, "started_at": time.time(),
    }))
    print(f"speed job {client.get_job_id()} running"
          + (f", restored from {restored}" if restored else ", fresh start"), flush=True)
    done = threading.Event()
    if settings.speed_compact_every_s:
        compactor(sinks, settings.speed_compact_every_s, done)
    checked = 0.0
    try:
        while not stopping:
            if time.monotonic() - checked >= 1:  # a call into the JVM: once a second
                state = str(client.get_job_status().result())
                if state in ("FAILED", "CANCELED", "FINISHED"):
                    print(f"speed job ended: {state}", file=sys.stderr, flush=True)
                    return 1
                write_state(settings, SPEED_METRICS, committer_metrics(sinks))
                checked = time.monotonic()
            # The consumers fetch ahead on their own threads: each poll only takes what
            # has arrived, so a quiet topic (the rejects) never holds back a busy one.
            if sum(sink.poll_once(timeout_ms=0) for sink in sinks) == 0:
                time.sleep(0.01)
    finally:
        done.set()
        status.unlink(missing_ok=True)
        if stopping:
            client.cancel().result()
        for sink in sinks:
            sink.close()
    print("speed job stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
