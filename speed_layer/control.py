"""`concord speed start|stop|status`: the speed job as a supervised, detached process."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from typing import Any

from infra.cluster import cancel_flink_jobs, flink_jobs
from infra.processes import Service, ServiceError
from shared.config import REPO_ROOT, Settings
from speed_layer.job import DROP_UNMATCHED_FLAG, latest_checkpoint, status_file

START_TIMEOUT_S = 180.0


def service(settings: Settings) -> Service:
    return Service("speed", settings.run_dir, settings.log_dir / "speed" / "job.log", ())


def _clean(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment without PyFlink's per-process variables: a caller that ran Flink
    itself (a test, a notebook) has its gateway port and loopback-worker flags there,
    which would make the job attach to the caller's JVM or refuse to start its own."""
    private = ("PYFLINK_", "_PYFLINK_", "PYTHON_LOOPBACK_", "BOOT_LOG_DIR")
    return {k: v for k, v in environ.items() if not k.startswith(private)}


PLAN_CHANGED = "Cannot map checkpoint/savepoint state"


def start(settings: Settings, *, drop_unmatched_state: bool = False) -> str:
    svc = service(settings)
    if (pid := svc.pid()) is not None:
        return f"speed job already running (pid {pid})"
    status_file(settings).unlink(missing_ok=True)
    env = {**_clean(os.environ), **settings.as_env()}
    cmd = [sys.executable, "-m", "speed_layer.job"]
    if drop_unmatched_state:
        cmd.append(DROP_UNMATCHED_FLAG)
    try:
        pid = svc.start(cmd, env=env, cwd=REPO_ROOT,
                        ready=lambda: status_file(settings).exists(), timeout_s=START_TIMEOUT_S)
    except ServiceError as exc:
        # The cause sits deep in a Java stack trace: look further back than the error's tail.
        if PLAN_CHANGED in str(exc) or PLAN_CHANGED in svc.log_tail(lines=2000):
            raise ServiceError(
                f"the speed pipeline changed since its newest checkpoint "
                f"({latest_checkpoint(settings)}): an upgrade or a new view. "
                "`concord speed start --drop-unmatched-state` starts it from there anyway: "
                "state that still matches is restored, the rest (e.g. the dedupe state) "
                "starts empty and the Kafka source resumes from the offsets of the last "
                "checkpoint; duplicates within the dedupe horizon around the restart may "
                "then be counted twice (`concord reconcile` shows them, the next batch "
                "run corrects the serving views).") from exc
        raise
    info = json.loads(status_file(settings).read_text())
    origin = f"resumed from {info['restored_from']}" if info["restored_from"] else "fresh start"
    return (f"speed job started (pid {pid}, Flink job {info['job_id']}, {origin}); "
            f"log {svc.log_file}")


def stop(settings: Settings) -> str:
    svc = service(settings)
    stopped = svc.stop(grace_s=60)
    # On a Flink cluster the job outlives a process that died: cancel it there too.
    left = cancel_flink_jobs(settings) if settings.flink_cluster else 0
    if not stopped and not left:
        return "speed job: not running"
    return ("speed job stopped" + (f" ({left} job(s) left on the Flink cluster cancelled)"
                                   if left else "")
            + " (checkpoints kept; `concord speed start` resumes)")


def status(settings: Settings) -> dict[str, Any]:
    svc = service(settings)
    pid = svc.pid()
    info: dict[str, Any] = {"running": pid is not None, "pid": pid, "log": str(svc.log_file)}
    if (left := svc.leftovers()) is not None:
        info["leftovers"] = (f"processes of a job that died still run (process group {left}): "
                             "`concord speed start` or `stop` ends them")
    try:
        info.update(json.loads(status_file(settings).read_text()))
    except (OSError, ValueError):
        pass
    checkpoint = latest_checkpoint(settings)
    info["latest_checkpoint"] = str(checkpoint) if checkpoint else None
    if settings.flink_cluster:
        try:
            info["cluster_jobs"] = flink_jobs(settings)
        except OSError as exc:
            info["cluster_jobs"] = f"Flink cluster at {settings.flink_cluster} unreachable: {exc}"
    return info
