"""`concord status`, per layer: how far behind each one is, and how healthy its input.

    speed    job running?, Kafka lag (messages of the trades topic past the offsets the
             job committed on its last checkpoint), newest checkpoint and its age,
             messages its contract rejected in the last 5 minutes
    batch    last committed ingest run and its age, Kafka lag (messages no ingest has
             read), that run's reject rate (contract rejects and duplicates / records)
    serving  per view: the boundary and its age (how far behind now batch rows end)

Read straight from Kafka and the lake's Delta tables, so it answers with Trino down.
Any part that cannot be read says why instead of failing the whole report.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from infra import kafka
from shared.bookkeeping import current_boundaries, ingest_ledger, ingested_until
from shared.config import Settings
from shared.tables import read_rows
from shared.views import VIEWS
from speed_layer import control
from speed_layer.job import GROUP_ID

REJECTS_WINDOW = timedelta(minutes=5)


def _age(moment: datetime | float | None, now: float) -> float | None:
    if moment is None:
        return None
    stamp = moment.timestamp() if isinstance(moment, datetime) else moment
    return round(max(0.0, now - stamp), 1)  # a file written since `now` was taken: 0


def speed_status(settings: Settings, ends: dict[int, int] | None, now: float) -> dict[str, Any]:
    job = control.status(settings)
    out: dict[str, Any] = {"running": job["running"], "pid": job["pid"]}
    chk = job.get("latest_checkpoint")
    out["last_checkpoint"] = chk
    out["checkpoint_age_s"] = None
    if chk:
        out["checkpoint_age_s"] = _age((Path(chk) / "_metadata").stat().st_mtime, now)
    if ends is not None:
        out["kafka_lag"] = kafka.lag(
            ends, kafka.committed_offsets(settings, GROUP_ID, settings.topic) or {})
    since = datetime.fromtimestamp(now, tz=UTC) - REJECTS_WINDOW
    rejects = [r for r in read_rows(settings.table_uri("speed", "contract_rejects"))
               if r["emitted_at"] is not None and r["emitted_at"] >= since]
    out["rejects_last_5m"] = sum(int(r["messages"]) for r in rejects)
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
        )
    if ends is not None:
        out["kafka_lag"] = kafka.lag(ends, ingested_until(ledger))
    return out


def serving_status(settings: Settings, now: float) -> dict[str, Any]:
    current = current_boundaries(settings)
    views = {}
    for name in VIEWS:
        boundary = current[name][0] if name in current else None
        views[name] = {"boundary": boundary.isoformat() if boundary else None,
                       "boundary_age_s": _age(boundary, now)}
    return {"views": views}


def layer_status(settings: Settings, *, kafka_up: bool = True) -> dict[str, Any]:
    """Every layer's figures; with `kafka_up` false (the caller found the broker down)
    the lags are left out at once instead of after a bootstrap timeout."""
    now = time.time()
    out: dict[str, Any] = {}
    ends: dict[int, int] | None = None
    if not kafka_up:
        out["kafka_error"] = "Kafka is down: lags unknown"
    else:
        try:
            ends = kafka.end_offsets(settings, settings.topic)
        except Exception as exc:  # noqa: BLE001 - reported, the rest still answers
            out["kafka_error"] = f"cannot read the topic's end offsets: {exc}"
    parts: dict[str, Callable[[], dict[str, Any]]] = {
        "speed": lambda: speed_status(settings, ends, now),
        "batch": lambda: batch_status(settings, ends, now),
        "serving": lambda: serving_status(settings, now),
    }
    for name, part in parts.items():
        try:
            out[name] = part()
        except Exception as exc:  # noqa: BLE001 - one layer's error does not hide the others
            out[name] = {"error": str(exc)}
    return out
