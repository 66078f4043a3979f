from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from batch_layer.recompute import align
from shared.views import BARS_1M, FLOW_5M


def test_range_is_widened_to_whole_windows() -> None:
    t = datetime(2026, 1, 1, 12, 3, 30, tzinfo=UTC)
    assert align(FLOW_5M, t, t + timedelta(seconds=1)) == (
        datetime(2026, 1, 1, 12, 0, tzinfo=UTC), datetime(2026, 1, 1, 12, 5, tzinfo=UTC))
    with pytest.raises(ValueError, match="empty range"):
        align(BARS_1M, t, t)
    with pytest.raises(ValueError, match="timezone"):
        align(BARS_1M, t.replace(tzinfo=None), t)
