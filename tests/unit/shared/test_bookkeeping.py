"""shared.bookkeeping and shared.tables.open_table on local Delta tables (delta-rs only)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.bookkeeping import (
    append_ledger,
    boundary_history,
    current_boundaries,
    history_of,
    ingest_ledger,
    ingested_until,
    ledger_rows,
    publish_boundaries,
)
from shared.config import Settings
from shared.tables import LakeReadError, open_table

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _counts(start: int, end: int) -> dict[str, int]:
    return {"start_offset": start, "end_offset": end, "records": end - start,
            "accepted": end - start, "rejected": 0, "duplicates": 0}


def test_the_ledger_is_written_once_per_run_and_status(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    assert ingest_ledger(settings, "trades") == []
    plan = [(0, _counts(0, 10)), (1, _counts(0, 4))]
    assert append_ledger(settings, 1, "trades", "planned", plan, app_id="t")
    assert not append_ledger(settings, 1, "trades", "planned", plan, app_id="t")  # a redo
    assert append_ledger(settings, 1, "trades", "committed", plan, app_id="t")
    assert append_ledger(settings, 2, "trades", "planned", [(0, _counts(10, 25))], app_id="t")
    assert append_ledger(settings, 1, "other", "committed", [(0, _counts(0, 99))], app_id="t")
    ledger = ingest_ledger(settings, "trades")
    assert len(ledger) == 5
    # Run 2 is planned, not committed: the next run still starts after run 1.
    assert ingested_until(ledger) == {0: 10, 1: 4}
    # The same definition over the rows Trino returns (partition, end offset, status).
    assert ingested_until(ledger_rows([(0, 10, "committed"), (0, 25, "committed")])) == {0: 25}


def test_boundaries_are_read_back_oldest_first(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    assert boundary_history(settings) == {} and current_boundaries(settings) == {}
    rows: list[dict[str, Any]] = [
        {"view_name": "bars_1m", "boundary": T0 + timedelta(minutes=m), "run_id": run,
         "raw_version": run, "published_at": T0 + timedelta(minutes=m)}
        for m, run in ((5, 2), (3, 1))]
    publish_boundaries(settings, rows)
    assert boundary_history(settings) == {"bars_1m": [(T0 + timedelta(minutes=3), 1),
                                                      (T0 + timedelta(minutes=5), 2)]}
    assert current_boundaries(settings) == {"bars_1m": (T0 + timedelta(minutes=5), 2)}
    # Trino hands timestamps back without a zone (UTC): the same history.
    naive = [{**r, "boundary": r["boundary"].replace(tzinfo=None),
              "published_at": r["published_at"].replace(tzinfo=None)} for r in rows]
    assert history_of(naive) == boundary_history(settings)


def test_open_table_tells_missing_from_unreadable(tmp_path: Path) -> None:
    assert open_table(str(tmp_path / "none")) is None
    (tmp_path / "empty" / "_delta_log").mkdir(parents=True)
    assert open_table(str(tmp_path / "empty")) is None  # a log with no commit yet
    broken = tmp_path / "broken" / "_delta_log"
    broken.mkdir(parents=True)
    (broken / "00000000000000000000.json").write_text("{not json")
    with pytest.raises(LakeReadError, match="after 2 attempts"):
        open_table(str(tmp_path / "broken"), attempts=2, backoff_s=0)
