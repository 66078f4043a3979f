"""`concord status`, per layer: how far behind each one is, and how healthy its input.

    speed    job running?, Kafka lag (messages of the trades topic past the offsets the
             job committed on its last checkpoint, and the age of the oldest of them),
             newest checkpoint and its age, messages its contract rejected in the last 5
             minutes (per reason), its committers' commits, records and commit latency
    batch    last committed ingest run, its age and counts (accepted, rejected,
             duplicates), Kafka lag (messages no ingest has read, and their age); the
             batch loop: its period, its last run's duration and outcome
    serving  per view: the boundary and its age (how far behind now batch rows end);
             freshness (age of the newest trade in serving.ticker, through Trino);
             `concord reconcile`'s last result
    tables   per speed table: data files and Delta log entries since the last checkpoint

One implementation, two outputs: `concord status` prints it, the exporter
(concord.metrics) serves it to Prometheus. Read straight from Kafka and the lake's Delta
tables, so it answers with Trino down (only freshness needs Trino). Any part that cannot
be read says why instead of failing the whole report.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from infra import kafka
from shared.bookkeeping import current_boundaries, ingest_ledger, ingested_until
from shared.config import Settings
from shared.errors import first_line
from shared.runstate import BATCH_RUN, RECONCILE, SPEED_METRICS, read_state
from shared.tables import open_table, read_rows
from shared.views import VIEWS
from speed_layer import control
from speed_layer.job import GROUP_ID

REJECTS_WINDOW = timedelta(minutes=5)


def _age(moment: datetime | float | None, now: float) -> float | None:
    if moment is None:
        return None
    stamp = moment.timestamp() if isinstance(moment, datetime) else moment
    return round(max(0.0, now - stamp), 1)  # a file written since `now` was taken: 0


def _lag(settings: Settings, ends: dict[int, int], positions: dict[int, int], now: float,
         out: dict[str, Any]) -> None:
    """Kafka lag in messages and in seconds (age of the oldest message not read yet)."""
    out["kafka_lag"] = kafka.lag(ends, positions)
    oldest = kafka.oldest_unread_timestamp(settings, settings.topic, positions, ends)
    out["kafka_lag_s"] = 0.0 if oldest is None else _age(oldest, now)


def _alive(pid: object) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def speed_status(settings: Settings, ends: dict[int, int] | None, now: float) -> dict[str, Any]:
    job = control.status(settings)
    out: dict[str, Any] = {"running": job["running"], "pid": job["pid"]}
    chk = job.get("latest_checkpoint")
    out["last_checkpoint"] = chk
    out["checkpoint_age_s"] = None
    if chk:
        out["checkpoint_age_s"] = _age((Path(chk) / "_metadata").stat().st_mtime, now)
    if ends is not None:
        _lag(settings, ends, kafka.committed_offsets(settings, GROUP_ID, settings.topic) or {},
             now, out)
    since = datetime.fromtimestamp(now, tz=UTC) - REJECTS_WINDOW
    reasons: Counter[str] = Counter()
    for r in read_rows(settings.table_uri("speed", "contract_rejects")):
        if r["emitted_at"] is not None and r["emitted_at"] >= since:
            reasons[str(r["reason"])] += int(r["messages"])
    out["rejects_last_5m"] = sum(reasons.values())
    out["rejects_last_5m_by_reason"] = dict(sorted(reasons.items()))
    metrics = read_state(settings, SPEED_METRICS)
    if job["running"] and metrics is not None and metrics.get("pid") == job["pid"]:
        out["committers"] = metrics["committers"]
    return out


def batch_status(settings: Settings, ends: dict[int, int] | None, now: float) -> dict[str, Any]:
    ledger = [r for r in ingest_ledger(settings, settings.topic) if r["status"] == "committed"]
    out: dict[str, Any] = {"last_ingest_run": None, "last_ingest_age_s": None}
    if ledger:
        last = max(r["run_id"] for r in ledger)
        rows = [r for r in ledger if r["run_id"] == last]
        records = sum(int(r["records"]) for r in rows)
        out.update(
            last_ingest_run=last,
            last_ingest_age_s=_age(max(r["at"] for r in rows), now),
            last_run_records=records,
            last_run_reject_rate=(round(sum(int(r["rejected"]) for r in rows) / records, 4)
                                  if records else None),
            last_run_messages={k: sum(int(r[k]) for r in rows)
                               for k in ("accepted", "rejected", "duplicates")},
        )
    if ends is not None:
        _lag(settings, ends, ingested_until(ledger), now, out)
    loop = read_state(settings, BATCH_RUN)
    out["interval_s"] = (loop or {}).get("every_s") or settings.batch_every_s
    out["lateness_s"] = settings.batch_lateness_s
    out["loop_running"] = loop is not None and _alive(loop.get("pid"))
    if loop is not None:
        out["loop"] = {k: loop.get(k) for k in ("every_s", "started_at", "finished_at",
                                                "duration_s", "ok", "error", "phases")}
        if loop.get("finished_at") is not None:
            out["loop"]["last_run_age_s"] = _age(float(loop["finished_at"]), now)
    return out


def serving_status(settings: Settings, now: float, *, trino_up: bool = False
                   ) -> dict[str, Any]:
    current = current_boundaries(settings)
    views = {}
    for name in VIEWS:
        boundary = current[name][0] if name in current else None
        views[name] = {"boundary": boundary.isoformat() if boundary else None,
                       "boundary_age_s": _age(boundary, now)}
    out: dict[str, Any] = {"views": views}
    if trino_up:
        try:
            out["freshness_s"] = freshness(settings, now)
        except Exception as exc:  # noqa: BLE001 - reported, the rest still answers
            out["freshness_error"] = first_line(exc, 300) or type(exc).__name__
    else:
        out["freshness_error"] = "Trino is down"
    reconciled = read_state(settings, RECONCILE)
    if reconciled is not None:
        out["reconcile"] = {**reconciled, "age_s": _age(float(reconciled["at"]), now)}
    return out


def freshness(settings: Settings, now: float) -> float | None:
    """Age of the newest trade the desk sees (serving.ticker), None when it holds none."""
    from serving_layer.trino import ident, query

    sql = f"SELECT max(ts) FROM {ident(settings.catalog)}.serving.ticker"  # noqa: S608 - fixed names
    newest = query(settings, sql)[0][0]
    if newest is None:
        return None
    return _age(newest if newest.tzinfo else newest.replace(tzinfo=UTC), now)


def tables_status(settings: Settings) -> dict[str, Any]:
    """Per speed table: data files and log entries (commits since the last checkpoint),
    the two things that grow when maintenance does not keep up."""
    out: dict[str, Any] = {}
    for name in [*VIEWS, "contract_rejects"]:
        table = open_table(settings.table_uri("speed", name))
        if table is None:
            continue
        out[f"speed.{name}"] = {"files": len(table.file_uris()), "version": table.version(),
                                "log_entries": log_entries(settings, "speed", name,
                                                           table.version())}
    return out


def log_entries(settings: Settings, schema: str, name: str, version: int) -> int | None:
    """Commits a reader replays after the table's last checkpoint (local lake only)."""
    if not settings.lake_is_local:
        return None
    log = settings.lake_path / schema / name / "_delta_log"
    try:
        checkpoint = int(json.loads((log / "_last_checkpoint").read_text())["version"])
    except (OSError, ValueError, KeyError):
        checkpoint = -1
    return version - checkpoint


def layer_status(settings: Settings, *, kafka_up: bool = True, trino_up: bool = False
                 ) -> dict[str, Any]:
    """Every layer's figures; with `kafka_up` false (the caller found the broker down)
    the lags are left out at once instead of after a bootstrap timeout; freshness is
    asked of Trino only when `trino_up`."""
    now = time.time()
    out: dict[str, Any] = {}
    ends: dict[int, int] | None = None
    if not kafka_up:
        out["kafka_error"] = "Kafka is down: lags unknown"
    else:
        try:
            ends = kafka.end_offsets(settings, settings.topic)
            out["kafka_messages"] = sum(ends.values())
        except Exception as exc:  # noqa: BLE001 - reported, the rest still answers
            out["kafka_error"] = f"cannot read the topic's end offsets: {exc}"
    parts: dict[str, Callable[[], dict[str, Any]]] = {
        "speed": lambda: speed_status(settings, ends, now),
        "batch": lambda: batch_status(settings, ends, now),
        "serving": lambda: serving_status(settings, now, trino_up=trino_up),
        "tables": lambda: tables_status(settings),
    }
    for name, part in parts.items():
        try:
            out[name] = part()
        except Exception as exc:  # noqa: BLE001 - one layer's error does not hide the others
            out[name] = {"error": str(exc)}
    return out
