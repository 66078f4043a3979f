from __future__ import annotations

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
from tests.contract_cases import CASES, fast_path_samples


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


def test_canonical_fast_path_never_disagrees_with_the_contract() -> None:
    samples = fast_path_samples()
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


def test_a_lone_surrogate_in_trade_id_is_rejected_not_stored() -> None:
    """JSON may escape half a UTF-16 pair; no engine can store it (Arrow and Delta are
    UTF-8): found when the fuzz sample went through Spark, whose ingest then failed."""
    from tests.contract_cases import good_text

    lone = parse_trade(good_text(trade_id='"\\ud800x"').encode())
    assert isinstance(lone, Rejection) and lone.reason == "bad_trade_id"
    lone.detail.encode("utf-8")
    pair = parse_trade(good_text(trade_id='"\\ud83d\\ude00"').encode())
    assert isinstance(pair, Trade) and pair.trade_id == "\U0001f600"
