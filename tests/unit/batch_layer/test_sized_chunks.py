"""Recompute chunks sized by trades, and the fast compilation's digit budget (no engine)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from batch_layer.recompute import sized_chunks
from batch_layer.spark_views import id_digits
from shared.views import BARS_1M, FLOW_5M

DAY0 = datetime(2025, 11, 22, tzinfo=UTC)


def test_days_join_while_they_hold_at_most_the_trades() -> None:
    per_day = {(DAY0 + timedelta(days=i)).date(): n for i, n in enumerate([4, 4, 4, 9, 1, 1])}
    plan = sized_chunks(BARS_1M, DAY0, DAY0 + timedelta(days=6), per_day, max_trades=10)
    assert plan == [(DAY0, DAY0 + timedelta(days=2)),
                    (DAY0 + timedelta(days=2), DAY0 + timedelta(days=3)),
                    (DAY0 + timedelta(days=3), DAY0 + timedelta(days=5)),
                    (DAY0 + timedelta(days=5), DAY0 + timedelta(days=6))]


def test_a_day_larger_than_the_limit_is_one_chunk_and_ranges_stay_whole_windows() -> None:
    per_day = {date(2025, 11, 22): 50}
    start = DAY0 + timedelta(hours=3, seconds=30)
    plan = sized_chunks(FLOW_5M, start, DAY0 + timedelta(hours=4, seconds=1), per_day, 10)
    assert plan == [(DAY0 + timedelta(hours=3), DAY0 + timedelta(hours=4, minutes=5))]


def test_the_order_code_fits_a_bigint_beside_the_ts_offset() -> None:
    for view in (BARS_1M, FLOW_5M):
        d = id_digits(view.window_ms)
        assert view.window_ms * 10**d * (d + 1) <= 2**63 - 1
        assert view.window_ms * 10 ** (d + 1) * (d + 2) > 2**63 - 1
    assert id_digits(60_000) == 13
