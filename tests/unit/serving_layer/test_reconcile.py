"""recount_search: which prefix of each partition's trades a speed row holds."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from serving_layer.reconcile import BATCH, LATE, PENDING, Candidate, _cuts, recount_search
from shared.contract import Trade
from shared.views import BARS_1M, VIEWS, evaluate

T0 = 1_795_451_400_000  # a minute's start


def trade(i: int, *, exchange: str = "okx", symbol: str = "ETH-USDT", ts: int = T0) -> Trade:
    return Trade(exchange, symbol, f"t{i}", Decimal(f"{3000 + i}.5"), Decimal(f"0.{i + 1:02d}"),
                 "buy" if i % 2 else "sell", ts + i)


def window(view_name: str) -> datetime:
    ms = VIEWS[view_name].window_ms
    return datetime.fromtimestamp(T0 // ms * ms / 1000, tz=UTC)


def test_cuts_are_every_way_to_take_from_the_ends() -> None:
    assert sorted(_cuts([2, 1], 2)) == [(1, 1), (2, 0)]
    assert list(_cuts([3], 4)) == []
    assert len(list(_cuts([3, 3, 3], 3))) == 10


def test_caught_up_speed_row_is_all_candidates() -> None:
    batch = [Candidate(trade(i), 0, i, BATCH) for i in range(5)]
    pending = [Candidate(trade(i), 0, i, PENDING) for i in range(5, 8)]
    key = ("okx", "ETH-USDT", window("bars_1m"))
    got = evaluate(BARS_1M, [c.trade for c in batch + pending])[key]
    held, tries = recount_search(BARS_1M, key, got, batch + pending)
    assert held is not None and len(held) == 8 and tries == 1


def test_speed_behind_holds_a_prefix_of_each_partition() -> None:
    view = VIEWS["symbol_bars_1m"]  # one symbol across exchanges: several partitions
    a = [Candidate(trade(i, exchange="okx"), 0, 10 + i, PENDING) for i in range(6)]
    b = [Candidate(trade(i, exchange="kraken"), 3, 40 + i, PENDING) for i in range(6, 12)]
    held_truly = a[:4] + b[:5]
    key = ("ETH-USDT", window("symbol_bars_1m"))
    got = evaluate(view, [c.trade for c in held_truly])[key]
    held, _ = recount_search(view, key, got, a + b)
    assert held is not None and {c.offset for c in held} == {c.offset for c in held_truly}


def test_a_gap_inside_a_partition_is_not_explained() -> None:
    cands = [Candidate(trade(i), 1, i, BATCH) for i in range(6)]
    key = ("okx", "ETH-USDT", window("bars_1m"))
    # The speed row lacks a trade in the middle: no reader of the partition in order
    # can hold that.
    got = evaluate(BARS_1M, [c.trade for c in cands if c.offset != 2])[key]
    held, tries = recount_search(BARS_1M, key, got, cands)
    assert held is None and tries == 1


def test_a_counted_duplicate_is_part_of_the_recount() -> None:
    first = Candidate(trade(0), 0, 0, BATCH)
    dup = Candidate(trade(0), 0, 9, LATE)
    key = ("okx", "ETH-USDT", window("bars_1m"))
    got = evaluate(BARS_1M, [first.trade, dup.trade])[key]
    assert got["trade_count"] == 2
    held, _ = recount_search(BARS_1M, key, got, [first, dup])
    assert held is not None and len(held) == 2


def test_no_speed_row_means_none_consumed() -> None:
    cands = [Candidate(trade(i), 0, i, PENDING) for i in range(3)]
    key = ("okx", "ETH-USDT", window("bars_1m"))
    held, _ = recount_search(BARS_1M, key, None, cands)
    assert held == []


def test_search_is_bounded() -> None:
    view = VIEWS["symbol_bars_1m"]
    cands = [Candidate(trade(i, exchange=f"x{p}"), p, i, PENDING)
             for p in range(5) for i in range(p * 20, p * 20 + 20)]
    key = ("ETH-USDT", window("symbol_bars_1m"))
    wrong = dict(evaluate(view, [c.trade for c in cands[:50]])[key], volume=Decimal("-1"))
    held, tries = recount_search(view, key, wrong, cands, max_tries=300)
    assert held is None and tries == 300


def test_an_empty_range_is_refused_before_anything_is_read() -> None:
    from datetime import UTC, datetime

    import pytest

    from serving_layer.reconcile import Reconciler

    t = datetime(2026, 1, 1, tzinfo=UTC)
    Reconciler.check_range(t, None)
    Reconciler.check_range(None, t)
    with pytest.raises(ValueError, match="--to must be after --from"):
        Reconciler.check_range(t, t)
