"""concord status per layer, from local Delta tables (no Kafka: lags are then left out)."""

from __future__ import annotations

import argparse
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from concord.commands.stack import layer_lines
from concord.status import batch_status, serving_status
from shared.config import Settings
from shared.tables import BOUNDARIES, arrow_schema


def test_batch_and_serving_status_from_the_ledger_and_boundaries(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    now = time.time()
    at = datetime.fromtimestamp(now - 30, tz=UTC)
    rows = [{"run_id": run, "topic": "trades", "kafka_partition": p, "start_offset": 0,
             "end_offset": 100 * run, "status": status, "records": 100, "accepted": 90,
             "rejected": 10, "duplicates": 4, "at": at}
            for run in (1, 2) for p in (0, 1) for status in ("planned", "committed")]
    write_deltalake(settings.table_uri("meta", "ingest_runs"), pa.Table.from_pylist(rows))
    boundary = datetime.fromtimestamp(now - 600, tz=UTC).replace(microsecond=0)
    write_deltalake(settings.table_uri("meta", "boundaries"), pa.Table.from_pylist(
        [{"view_name": "bars_1m", "boundary": boundary - timedelta(minutes=5), "run_id": 1,
          "raw_version": 1, "published_at": at},
         {"view_name": "bars_1m", "boundary": boundary, "run_id": 2, "raw_version": 2,
          "published_at": at}], schema=arrow_schema(BOUNDARIES)))

    batch = batch_status(settings, {0: 250, 1: 200}, now)
    assert batch["last_ingest_run"] == 2 and batch["last_run_records"] == 200
    assert batch["last_run_reject_rate"] == 0.1
    assert batch["kafka_lag"] == 50  # partition 0 ingested to 200 of 250
    assert 29 <= batch["last_ingest_age_s"] <= 60
    views = serving_status(settings, now)["views"]
    assert views["bars_1m"]["boundary"] == boundary.isoformat()
    assert 599 <= views["bars_1m"]["boundary_age_s"] <= 630
    assert views["flow_5m"] == {"boundary": None, "boundary_age_s": None}

    lines = layer_lines({"speed": {"error": "boom"}, "batch": batch,
                          "serving": {"views": views}})
    assert "speed:   cannot tell: boom" in lines
    assert any(ln.startswith("batch:   last ingest run 2 ") and "10.00% rejected" in ln
               and "Kafka lag 50 messages" in ln for ln in lines)
    assert "serving: flow_5m: no boundary yet (speed rows only)" in lines


def test_nothing_yet_is_said_plainly(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    batch = batch_status(settings, None, time.time())
    assert batch == {"last_ingest_run": None, "last_ingest_age_s": None,
                     "interval_s": 180, "lateness_s": 120, "loop_running": False}
    assert layer_lines({"speed": {"error": "x"}, "batch": batch, "serving": {"views": {}}})[1] \
        == "batch:   no ingest run yet; Kafka lag unknown"


def test_a_batch_loop_leaves_its_period_and_each_runs_outcome(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`batch run --every` writes run/batch-run.json after each run (no Spark here: a run
    is replaced by one that succeeds, then one that fails, then an interrupt)."""
    from concord.commands import batch
    from shared.runstate import BATCH_RUN, read_state, write_state

    settings = Settings(home=tmp_path)
    seen: list[dict[str, Any] | None] = []

    def fake_run(settings: Settings, spark: object, topic: str | None) -> dict[str, float]:
        seen.append(read_state(settings, BATCH_RUN))
        if len(seen) == 1:
            return {"ingest": 1.5, "recompute": 2.0}
        if len(seen) == 2:
            raise RuntimeError("Kafka is gone\nwith a second line")
        raise KeyboardInterrupt

    class Spark:
        def stop(self) -> None:
            pass

    monkeypatch.setattr(batch, "_spark", lambda settings, app: Spark())
    monkeypatch.setattr(batch, "_batch_run_once", fake_run)
    args = argparse.Namespace(every=0.01, topic=None)
    with pytest.raises(KeyboardInterrupt):
        batch.cmd_batch_run(settings, args)
    first, second, third = seen
    assert first is not None and first["every_s"] == 0.01 and first["ok"] is None
    assert second is not None and second["ok"] is True
    assert second["phases"] == {"ingest": 1.5, "recompute": 2.0}
    assert third is not None and third["ok"] is False and third["phases"] == {}
    assert third["error"] == "RuntimeError: Kafka is gone"
    status = batch_status(settings, None, time.time())
    assert status["interval_s"] == 0.01 and status["loop"]["ok"] is False
    assert status["loop_running"]  # the pid it recorded is this test's process
    dead = subprocess.Popen(["true"])  # a pid that no longer runs
    dead.wait()
    write_state(settings, BATCH_RUN, {**(read_state(settings, BATCH_RUN) or {}),
                                      "pid": dead.pid})
    assert not batch_status(settings, None, time.time())["loop_running"]
