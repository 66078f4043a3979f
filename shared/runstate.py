"""What long-running parts leave for `concord status` and the exporter to read: small
JSON files under $CONCORD_HOME/run, each replaced whole (never seen half written).

    speed-metrics.json  the speed job's committers: commits, records, commit latency
                        (rewritten every second while the job runs)
    batch-run.json      the batch loop: its period, the last run's start, end, outcome
    reconcile.json      `concord reconcile`'s last result
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

from shared.config import Settings

SPEED_METRICS = "speed-metrics"
BATCH_RUN = "batch-run"
RECONCILE = "reconcile"


def write_state(settings: Settings, name: str, state: dict[str, Any]) -> None:
    """Replace run/<name>.json with `state` atomically (a reader sees old or new)."""
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=settings.run_dir)
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(state, out, default=str)
        os.replace(tmp, settings.run_dir / f"{name}.json")
    except BaseException:
        os.unlink(tmp)
        raise


def read_state(settings: Settings, name: str) -> dict[str, Any] | None:
    """run/<name>.json, or None when it is absent or unreadable."""
    try:
        state = json.loads((settings.run_dir / f"{name}.json").read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None
