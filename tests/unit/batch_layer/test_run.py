from __future__ import annotations

from batch_layer.run import contiguous, merge_ranges


def test_contiguous_windows_form_ranges() -> None:
    assert contiguous([120, 0, 60, 300, 360, 60], 60) == [(0, 180), (300, 420)]
    assert contiguous([], 60) == []


def test_merge_ranges_joins_overlapping_and_adjacent() -> None:
    assert merge_ranges([(300, 400), (0, 60), (60, 120), (100, 200)]) == [(0, 200), (300, 400)]
    assert merge_ranges([]) == []
