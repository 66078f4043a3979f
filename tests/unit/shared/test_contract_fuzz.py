"""Property-based fuzzing of the trade contract (hypothesis): random bytes, random JSON
and hostile mutations of a valid message. Whatever comes in, `parse_trade` returns a
Trade or a Rejection with one of the stable reason codes (never raises), judges the
same bytes the same way twice, agrees with the canonical fast path the engines use,
and accepts a decimal exactly as plain `decimal` reads it."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from shared.contract import FIELDS, Reason, Rejection, Trade, canonical_trade, parse_trade
from tests.contract_cases import GOOD, HOSTILE_TEXTS, engine_sample, good_text

REASONS = {v for k, v in vars(Reason).items() if not k.startswith("_")}
RUNS = settings(max_examples=400, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

JSON_LEAVES = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
               | st.text(max_size=20))
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=20,
)
HOSTILE_TEXT = st.sampled_from(HOSTILE_TEXTS)


def check(value: bytes | None) -> Trade | Rejection:
    result = parse_trade(value)
    assert isinstance(result, Trade | Rejection), result
    if isinstance(result, Rejection):
        assert result.reason in REASONS, result
        assert result.detail
    assert parse_trade(value) == result  # the same bytes, the same verdict
    # Whatever the verdict holds, every engine can store it (Arrow, Delta: UTF-8 only).
    for text in ((result.detail,) if isinstance(result, Rejection) else
                 (result.exchange, result.symbol, result.trade_id, result.side)):
        text.encode("utf-8")
    if value is not None:
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            return result
        fast = canonical_trade(text)
        if fast is not None:  # the engines' fast path may only ever agree
            assert fast == result, value
    return result


@RUNS
@given(st.binary(max_size=300))
@example(b"")
@example(b"\xff\xfe")
@example(b"\x00")
@example(b'{"exchange": "binance"\x00}')
def test_random_bytes_are_judged_never_raised(value: bytes) -> None:
    check(value)


@RUNS
@given(JSON_VALUES)
def test_random_json_is_judged_never_raised(obj: Any) -> None:
    check(json.dumps(obj).encode())


@RUNS
@given(st.sampled_from(FIELDS), st.one_of(HOSTILE_TEXT,
                                          JSON_VALUES.map(json.dumps)))
def test_one_hostile_field_is_rejected_or_read_exactly(field: str, raw: str) -> None:
    result = check(good_text(**{field: raw}).encode())
    if isinstance(result, Trade) and field in ("price", "qty"):
        # accepted: exactly the decimal the text says, as plain `decimal` reads it
        text = json.loads(raw) if raw.startswith('"') else raw
        assert getattr(result, field) == Decimal(text)


@RUNS
@given(st.sampled_from(FIELDS), st.sampled_from(FIELDS), st.data())
def test_duplicate_keys_missing_and_extra_fields_are_judged(drop: str, twice: str,
                                                            data: st.DataObject) -> None:
    # a duplicate key (the last one wins, as in JSON parsers), an unknown extra field
    dup = good_text()[:-1] + f', "{twice}": {data.draw(HOSTILE_TEXT)}, "extra": 1}}'
    check(dup.encode())
    without = {k: v for k, v in GOOD.items() if k != drop}
    result = check(json.dumps(without).encode())
    assert isinstance(result, Rejection) and result.reason == Reason.MISSING_FIELD


@RUNS
@given(st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("9999999999.99999999"),
                   places=8, allow_nan=False, allow_infinity=False))
def test_every_valid_price_is_accepted_exactly(price: Decimal) -> None:
    plain = f"{price:f}"  # positional notation: the contract refuses exponents
    for raw in (json.dumps(plain), plain):
        result = check(good_text(price=raw).encode())
        assert isinstance(result, Trade), (raw, result)
        assert result.price == price


def test_deep_nesting_and_huge_values_are_rejected_with_a_reason() -> None:
    for raw in ("[" * 100_000 + "]" * 100_000, '"' + "9" * 1_000_000 + '"'):
        for field in ("price", "exchange"):
            result = check(good_text(**{field: raw}).encode())
            assert isinstance(result, Rejection)
    assert isinstance(check(("[" * 100_000).encode()), Rejection)


def test_the_engine_sample_holds_every_verdict_kind() -> None:
    sample = engine_sample()
    verdicts = [parse_trade(v) for v in sample]
    assert any(isinstance(v, Trade) for v in verdicts)
    assert len({v.reason for v in verdicts if isinstance(v, Rejection)}) >= 8
    assert engine_sample() == sample  # the same sample every run
