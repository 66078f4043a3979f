"""speed_layer.pipeline's SQL pieces that need no engine."""

from __future__ import annotations

import pytest

from shared.config import Settings
from speed_layer.pipeline import each_emit


@pytest.mark.parametrize(("ms", "interval"), [(100, "0.100"), (250, "0.250"),
                                                (1000, "1.000"), (60_000, "60.000")])
def test_the_emit_slice_is_an_exact_interval(ms: int, interval: str) -> None:
    sql = each_emit(Settings(speed_emit_ms=ms), "t")
    assert f"INTERVAL '{interval}' SECOND(2, 3)" in sql and "TABLE t," in sql

