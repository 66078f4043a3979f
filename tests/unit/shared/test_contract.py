from __future__ import annotations

import itertools
from dataclasses import asdict
from decimal import Decimal
from typing import Any

import pytest

from producers.market import Market, MarketConfig
from shared.contract import (
    VERDICT_FIELDS,
    Rejection,
    Trade,
    canonical_trade,
    parse_trade,
    verdict,
)
from tests.contract_cases import CASES, msg


@pytest.mark.parametrize(("raw", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_contract_case(raw: bytes, expected: str | dict[str, Any]) -> None:
    result = parse_trade(raw)
    if isinstance(expected, str):
        assert isinstance(result, Rejection), result
        assert result.reason == expected
        assert result.detail  # every rejection says why, in words
    else:
        assert isinstance(result, Trade), result
        assert asdict(result) == expected


def test_null_value_is_rejected_not_raised() -> None:
    assert isinstance(parse_trade(None), Rejection)


def test_decimals_are_exact_and_typed() -> None:
    trade = parse_trade(b'{"exchange":"x","symbol":"A-B","trade_id":"1","price":0.1,'
                        b'"qty":"0.2","side":"buy","ts":0}')
    assert isinstance(trade, Trade)
    assert isinstance(trade.price, Decimal) and trade.price + trade.qty == Decimal("0.3")


def test_canonical_json_round_trips() -> None:
    trade = parse_trade(CASES[0][1])
    assert isinstance(trade, Trade)
    again = parse_trade(trade.to_json().encode())
    assert again == trade
    assert trade.key == "binance:BTC-USDT"
    assert trade.identity == ("binance", "BTC-USDT", "8812731")


@pytest.mark.parametrize(
    "raw", [c[1] for c in CASES] + [None], ids=[c[0] for c in CASES] + ["null"]
)
def test_verdict_is_parse_trade_flattened(raw: bytes | None) -> None:
    row = dict(zip([name for name, _ in VERDICT_FIELDS], verdict(raw), strict=True))
    result = parse_trade(raw)
    if isinstance(result, Rejection):
        assert row == {**dict.fromkeys(row), "ok": False, "reason": result.reason,
                       "detail": result.detail}
    else:
        assert row == {**asdict(result), "ok": True, "reason": None, "detail": None}


def _mutations(value: bytes) -> list[bytes]:
    """Small edits of a good message: each character dropped, doubled or replaced."""
    out = []
    for i in range(len(value)):
        out.append(value[:i] + value[i + 1:])
        out.append(value[:i] + value[i:i + 1] * 2 + value[i + 1:])
        for ch in (b"0", b" ", b"\"", b"\\", b"\n", b"-", b"9", b".", "\u2028".encode()):
            out.append(value[:i] + ch + value[i + 1:])
    return out


def test_canonical_fast_path_never_disagrees_with_the_contract() -> None:
    market = itertools.islice(Market(MarketConfig(seed=5, malformed_fraction=0.2)).messages(),
                              5000)
    samples = [c[1] for c in CASES] + [m.value for m in market] + _mutations(CASES[0][1])
    samples += [msg(price=p) for p in ("0", "00", "0.00000001", "0000000000000001.5", "1.",
                                       ".5", "01", "12345678901", "1234567890.123456789")]
    good = CASES[0][1]
    samples += [good + "\u2028".encode(), good + b"\n", b" \t" + good, good + b"}",
                b"\xef\xbb\xbf" + good]
    samples += [msg(ts=t) for t in (0, 253402300799999, 253402300800000, 999999999999999)]
    fast = 0
    for value in samples:
        text = value.decode("utf-8", errors="replace")
        trade = canonical_trade(text)
        if trade is not None:
            fast += 1
            assert parse_trade(value) == trade, value
    # The generator's well-formed messages all take the fast path.
    assert fast >= 4000


def test_canonical_fast_path_takes_the_generator_format() -> None:
    message = next(iter(Market(MarketConfig(seed=1)).messages()))
    assert canonical_trade(message.value.decode()) == parse_trade(message.value)
