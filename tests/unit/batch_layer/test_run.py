from __future__ import annotations

from batch_layer.run import contiguous


def test_contiguous_windows_form_ranges() -> None:
    assert contiguous([120, 0, 60, 300, 360, 60], 60) == [(0, 180), (300, 420)]
    assert contiguous([], 60) == []
