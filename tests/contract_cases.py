"""Shared test vectors for the trade contract: every rule and its edges.

Each case is (id, raw message bytes, expected), where expected is either the reason
code of the rejection or a dict of the accepted trade's fields. The same vectors
check the Python contract, and the Spark and Flink paths that apply it.
"""

from __future__ import annotations

import json
import random
from decimal import Decimal
from typing import Any

from shared.contract import Reason

GOOD: dict[str, Any] = {
    "exchange": "binance", "symbol": "BTC-USDT", "trade_id": "8812731",
    "price": "64250.12000000", "qty": "0.01500000", "side": "buy", "ts": 1763800000123,
}


def msg(**changes: Any) -> bytes:
    """GOOD with fields changed (a value of ... removes the field)."""
    obj = {k: v for k, v in {**GOOD, **changes}.items() if v is not ...}
    return json.dumps(obj).encode()


def raw(text: str) -> bytes:
    return text.encode()


ACCEPTED = {
    "exchange": "binance", "symbol": "BTC-USDT", "trade_id": "8812731",
    "price": Decimal("64250.12"), "qty": Decimal("0.015"), "side": "buy", "ts": 1763800000123,
}

CASES: list[tuple[str, bytes, str | dict[str, Any]]] = [
    ("good", msg(), ACCEPTED),
    ("json_number_price", raw('{"exchange":"binance","symbol":"BTC-USDT","trade_id":"8812731",'
                              '"price":64250.12000000,"qty":0.015,"side":"buy",'
                              '"ts":1763800000123}'), ACCEPTED),
    ("integer_price", msg(price=64250), {**ACCEPTED, "price": Decimal("64250")}),
    ("integer_trade_id", msg(trade_id=8812731), ACCEPTED),
    ("extra_fields_ignored", msg(extra="x", nested={"a": 1}), ACCEPTED),
    ("exactly_8_fraction_digits", msg(qty="0.00000001"), {**ACCEPTED, "qty": Decimal("1E-8")}),
    ("nine_fraction_digits", msg(qty="0.000000001"), Reason.OUT_OF_RANGE),
    ("nine_fraction_digits_trailing_zero", msg(qty="1.000000000"), Reason.OUT_OF_RANGE),
    ("ten_integer_digits", msg(price="9999999999.99999999"),
     {**ACCEPTED, "price": Decimal("9999999999.99999999")}),
    ("eleven_integer_digits", msg(price="10000000000"), Reason.OUT_OF_RANGE),
    ("leading_zeros_do_not_count", msg(price="000064250.12"), ACCEPTED),
    ("exponent_number", raw('{"exchange":"binance","symbol":"BTC-USDT","trade_id":"1",'
                            '"price":6.4e4,"qty":"1","side":"buy","ts":1}'), Reason.BAD_NUMBER),
    ("exponent_string", msg(price="6.4e4"), Reason.BAD_NUMBER),
    ("zero_price", msg(price="0"), Reason.NOT_POSITIVE),
    ("zero_qty_with_fraction", msg(qty="0.00000000"), Reason.NOT_POSITIVE),
    ("negative_price", msg(price="-1.5"), Reason.NOT_POSITIVE),
    ("price_not_number", msg(price="abc"), Reason.BAD_NUMBER),
    ("price_with_spaces", msg(price=" 1.5"), Reason.BAD_NUMBER),
    ("price_boolean", msg(price=True), Reason.BAD_TYPE),
    ("price_null", msg(price=None), Reason.NULL_FIELD),
    ("missing_qty", msg(qty=...), Reason.MISSING_FIELD),
    ("missing_ts", msg(ts=...), Reason.MISSING_FIELD),
    ("null_exchange", msg(exchange=None), Reason.NULL_FIELD),
    ("exchange_upper", msg(exchange="Binance"), Reason.BAD_EXCHANGE),
    ("exchange_too_long", msg(exchange="x" * 33), Reason.BAD_EXCHANGE),
    ("exchange_number", msg(exchange=5), Reason.BAD_TYPE),
    ("symbol_lower", msg(symbol="btc-usdt"), Reason.BAD_SYMBOL),
    ("symbol_no_dash", msg(symbol="BTCUSDT"), Reason.BAD_SYMBOL),
    ("symbol_padded", msg(symbol=" BTC-USDT"), Reason.BAD_SYMBOL),
    ("trade_id_empty", msg(trade_id=""), Reason.BAD_TRADE_ID),
    ("trade_id_65", msg(trade_id="x" * 65), Reason.BAD_TRADE_ID),
    ("trade_id_64", msg(trade_id="x" * 64), {**ACCEPTED, "trade_id": "x" * 64}),
    ("trade_id_float", msg(trade_id=1.5), Reason.BAD_TYPE),
    ("trade_id_list", msg(trade_id=[1]), Reason.BAD_TYPE),
    ("side_upper", msg(side="BUY"), Reason.BAD_SIDE),
    ("side_other", msg(side="bid"), Reason.BAD_SIDE),
    ("sell", msg(side="sell"), {**ACCEPTED, "side": "sell"}),
    ("ts_string", msg(ts="1763800000123"), Reason.BAD_TS),
    ("ts_float", msg(ts=1763800000123.5), Reason.BAD_TS),
    ("ts_negative", msg(ts=-1), Reason.BAD_TS),
    ("ts_too_big", msg(ts=253402300800000), Reason.BAD_TS),
    ("keys_case_sensitive", raw(msg().decode().replace('"side"', '"Side"')), Reason.MISSING_FIELD),
    ("broken_json", raw('{"exchange": "binance", '), Reason.MALFORMED_JSON),
    ("empty", b"", Reason.MALFORMED_JSON),
    ("nan", raw('{"price": NaN}'), Reason.MALFORMED_JSON),
    ("not_utf8", b'{"exchange":"\xff"}', Reason.ENCODING),
    ("array", raw("[1, 2]"), Reason.NOT_AN_OBJECT),
    ("string", raw('"trade"'), Reason.NOT_AN_OBJECT),
    ("null", raw("null"), Reason.NOT_AN_OBJECT),
]


def _mutations(value: bytes) -> list[bytes]:
    """Small edits of a good message: each character dropped, doubled or replaced."""
    out = []
    for i in range(len(value)):
        out.append(value[:i] + value[i + 1:])
        out.append(value[:i] + value[i:i + 1] * 2 + value[i + 1:])
        for ch in (b"0", b" ", b"\"", b"\\", b"\n", b"-", b"9", b".", "\u2028".encode()):
            out.append(value[:i] + ch + value[i + 1:])
    return out


def fast_path_samples() -> list[bytes]:
    """Messages an engine's fast path for canonical messages must never judge otherwise
    than the contract: every case, 5,000 generated messages (a fifth malformed), every
    one-character edit of a good message, decimals and ts at their limits, and a good
    message with something around it."""
    import itertools

    from producers.market import Market, MarketConfig

    market = itertools.islice(Market(MarketConfig(seed=5, malformed_fraction=0.2)).messages(),
                              5000)
    good = CASES[0][1]
    samples = [c[1] for c in CASES] + [m.value for m in market] + _mutations(good)
    samples += [msg(price=p) for p in ("0", "00", "0.00000001", "0000000000000001.5", "1.",
                                       ".5", "01", "12345678901", "1234567890.123456789")]
    samples += [good + "\u2028".encode(), good + b"\n", b" \t" + good, good + b"}",
                b"\xef\xbb\xbf" + good]
    samples += [msg(ts=t) for t in (0, 253402300799999, 253402300800000, 999999999999999)]
    return samples


# Values no well-behaved producer sends, as raw JSON text (some are not JSON at all).
HOSTILE_TEXTS = [
    "1e400", "-1e400", "1E+2", "1e-9", "NaN", "Infinity", "-Infinity", "0x1F", "+1", ".5",
    "5.", "00012", "-0", "1" * 400, "0." + "0" * 300 + "1", "1_000", "true", "null", "[]",
    "{}", '"\\u0000"', '"\\ud800"', '"\u0430"', '"\uff11\uff12"', '"1\\u00a0"', '" 1"',
    '"1e3"', '"NaN"', '"Infinity"', '"-0.00000001"', '"99999999999.99999999"',
    '"0.000000001"', '"1,5"', '"\u0661\u0662"', "[" * 1000 + "]" * 1000,
    '"' + "x" * 1_000_000 + '"', '"buy\\u0000"', '"BUY"', '"b\u0443y"',
]


def good_text(**changes: str) -> str:
    """GOOD as JSON text with the named fields' raw JSON text replaced."""
    return "{" + ", ".join(f'"{k}": {changes.get(k, json.dumps(v))}' for k, v in GOOD.items()) + "}"


def engine_sample(seed: int = 15) -> list[bytes | None]:
    """A fixed sample of the cases above for the engines (integration test): every
    hostile text in every field of a valid message, seeded random bytes, a tombstone.
    Values over 100 kB are left out: the broker refuses messages over 1 MB and the
    engines' handling of size is Kafka's, not the contract's."""
    rng = random.Random(seed)
    texts = [t for t in HOSTILE_TEXTS if len(t) < 100_000]
    out: list[bytes | None] = [good_text(**{name: text}).encode()
                               for name in GOOD for text in texts]
    out += [rng.randbytes(rng.randrange(1, 200)) for _ in range(60)]
    out += [json.dumps(GOOD).encode(), None, b"", b"\x00", "{\"ts\": 1}".encode("utf-16")]
    return out

