from __future__ import annotations

import itertools
from collections import Counter

from producers.market import Market, MarketConfig, Message
from shared.contract import Rejection, Trade, parse_trade


def _take(config: MarketConfig, n: int) -> list[Message]:
    return list(itertools.islice(Market(config).messages(), n))


def test_same_seed_same_stream_other_seed_other_stream() -> None:
    a = _take(MarketConfig(seed=3), 500)
    b = _take(MarketConfig(seed=3), 500)
    c = _take(MarketConfig(seed=4), 500)
    assert [m.value for m in a] == [m.value for m in b]
    assert [m.value for m in a] != [m.value for m in c]


def test_every_kind_of_message_meets_or_breaks_the_contract_as_labelled() -> None:
    config = MarketConfig(seed=9, jitter_ms=2000, late_fraction=0.02, duplicate_fraction=0.02,
                          malformed_fraction=0.05)
    msgs = _take(config, 20_000)
    kinds = Counter(m.kind.split(":")[0] for m in msgs)
    assert set(kinds) == {"trade", "late", "duplicate", "malformed"}
    for m in msgs:
        parsed = parse_trade(m.value)
        if m.kind.startswith("malformed"):
            assert isinstance(parsed, Rejection), m.value
        else:
            assert isinstance(parsed, Trade) and parsed == m.trade
            assert m.key == parsed.key.encode()
    # Several exchanges and symbols, both sides, trade ids unique per (exchange, symbol).
    trades = [m.trade for m in msgs if m.kind in ("trade", "late") and m.trade]
    assert len({t.exchange for t in trades}) >= 4 and len({t.symbol for t in trades}) >= 5
    assert {t.side for t in trades} == {"buy", "sell"}
    assert len({t.identity for t in trades}) == len(trades)
    # Duplicates are byte-for-byte repeats of earlier messages.
    seen: set[bytes] = set()
    for m in msgs:
        if m.kind == "duplicate":
            assert m.value in seen
        seen.add(m.value)


def test_sizes_are_heavy_tailed_and_prices_walk() -> None:
    msgs = _take(MarketConfig(seed=5), 20_000)
    btc = [m.trade for m in msgs if m.trade and m.trade.exchange == "binance"
           and m.trade.symbol == "BTC-USDT"]
    notionals = sorted(float(t.price * t.qty) for t in btc)
    median, p99 = notionals[len(notionals) // 2], notionals[int(len(notionals) * 0.99)]
    assert p99 > 10 * median  # a fat tail, not a bell
    assert len({t.price for t in btc}) > 20


def test_live_stream_follows_the_wall_clock_and_keeps_duplicates_verbatim() -> None:
    import json
    import time

    from producers.produce import generated
    from shared.contract import Trade, parse_trade

    config = MarketConfig(seed=3, jitter_ms=1000, late_fraction=0.05, duplicate_fraction=0.05,
                          malformed_fraction=0.02)
    before = int(time.time() * 1000)
    records = list(generated(config, count=3000, duration_s=None, live=True))
    after = int(time.time() * 1000)
    trades = [t for _, v in records if isinstance(t := parse_trade(v), Trade)]
    assert len(trades) > 2500
    on_time = [t for t in trades if t.ts >= before - 1000]
    assert len(on_time) > 0.9 * len(trades) and all(t.ts <= after for t in trades)
    # late ones are 1-10 minutes behind the clock
    assert any(before - 600_000 - 1000 <= t.ts < before - 60_000 for t in trades)
    values = [v for _, v in records]
    assert len(values) - len(set(values)) > 50  # duplicates repeat the bytes as sent
    assert all(json.loads(v)["ts"] for v in values[:5] if v.startswith(b'{"exchange"'))
