from __future__ import annotations

from datetime import UTC, datetime, timedelta

from batch_layer.run import BatchRun, contiguous, merge_ranges
from shared.config import Settings


def test_contiguous_windows_form_ranges() -> None:
    assert contiguous([120, 0, 60, 300, 360, 60], 60) == [(0, 180), (300, 420)]
    assert contiguous([], 60) == []


def test_merge_ranges_joins_overlapping_and_adjacent() -> None:
    assert merge_ranges([(300, 400), (0, 60), (60, 120), (100, 200)]) == [(0, 200), (300, 400)]
    assert merge_ranges([]) == []


def test_speed_rows_are_kept_back_to_the_previous_boundary_at_least() -> None:
    settings = Settings(speed_retention_s=600)
    job = BatchRun.__new__(BatchRun)
    job.settings = settings
    t = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert job.keep_speed_from([]) is None
    assert job.keep_speed_from([t, t]) is None  # one boundary so far: keep everything
    # boundary moved 2 minutes: the retention (10 min) reaches further back
    assert job.keep_speed_from([t, t + timedelta(minutes=2)]) == t - timedelta(minutes=8)
    # boundary moved an hour: keep back to the previous boundary
    late = t + timedelta(hours=1)
    assert job.keep_speed_from([t, late, late]) == t
