"""The trade message: the one definition every producer meets and every layer applies.

A message is a UTF-8 JSON object (DESIGN.md, "The trade message"):

    {"exchange":"binance","symbol":"BTC-USDT","trade_id":"8812731",
     "price":"64250.12000000","qty":"0.01500000","side":"buy","ts":1763800000123}

`parse_trade` turns the raw value bytes into a `Trade` or a `Rejection` with a stable
reason code and a human detail. Numbers are never read through float: JSON numbers
are kept as their literal text, and price/qty are checked on that text so that every
engine applies the same rule to the same characters.

Rules, beyond "a field of the right JSON type must be present and not null":
- exchange `[a-z0-9_]{1,32}`; symbol `BASE-QUOTE`, each `[A-Z0-9]{1,16}`;
- trade_id a string of 1-64 characters (no lone UTF-16 surrogate), or a JSON integer
  read as its decimal text;
- price, qty: a decimal string or a JSON number, plain notation (no exponent), at most
  10 integer digits (leading zeros aside) and at most 8 fractional digits as written,
  and > 0; they are DECIMAL(18,8);
- side `buy` or `sell` (the taker's side);
- ts a JSON integer, epoch milliseconds UTC, from 0 to 253402300799999 (year 9999).
Unknown extra fields are ignored; keys are case-sensitive; values are not trimmed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

PRICE_SCALE: Final = 8
PRICE_PRECISION: Final = 18
MAX_TS_MS: Final = 253_402_300_799_999

EXCHANGE_RE: Final = re.compile(r"[a-z0-9_]{1,32}")
SYMBOL_RE: Final = re.compile(r"[A-Z0-9]{1,16}-[A-Z0-9]{1,16}")
# Text of an acceptable DECIMAL(18,8) literal (sign handled separately).
DECIMAL_RE: Final = re.compile(r"0*([0-9]{1,10})(\.[0-9]{1,8})?")
NUMBER_RE: Final = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")

FIELDS: Final = ("exchange", "symbol", "trade_id", "price", "qty", "side", "ts")


def _canonical_re() -> str:
    ws = r"[ \t\n\r]*"
    decimal = r'"0*([0-9]{1,10}(?:[.][0-9]{1,8})?)"'
    values = {
        "exchange": r'"([a-z0-9_]{1,32})"',
        "symbol": r'"([A-Z0-9]{1,16}-[A-Z0-9]{1,16})"',
        # Printable ASCII but the quote and the backslash: no escapes, one char = one char.
        "trade_id": r'"([ !#-\[\]-~]{1,64})"',
        "price": decimal,
        "qty": decimal,
        "side": r'"(buy|sell)"',
        "ts": r"(0|[1-9][0-9]{0,14})",
    }
    members = f"{ws},{ws}".join(f'"{name}"{ws}:{ws}{values[name]}' for name in FIELDS)
    # `(?![\s\S])` is the very end in both dialects (Java's `$` would also match
    # before a final U+2028, which JSON does not allow).
    return rf"^{ws}[{{]{ws}{members}{ws}[}}]{ws}(?![\s\S])"


# The canonical message: the contract's fields in their documented order, strings for
# price and qty, nothing else. Such a message is valid exactly when, further, price > 0,
# qty > 0 and ts <= MAX_TS_MS; its fields are then the regex groups (CANONICAL_GROUPS),
# decimals cast to DECIMAL(18,8). Engines use this to accept the common case without
# leaving the JVM (the same regex syntax in Python, Java, Spark and Flink) and send every
# other message through `verdict`. The unit tests check it can never disagree with
# `parse_trade`.
CANONICAL_RE: Final = _canonical_re()
CANONICAL_GROUPS: Final = {name: i + 1 for i, name in enumerate(FIELDS)}
_CANONICAL: Final = re.compile(CANONICAL_RE)

# The verdict on one message as a flat record, the shape both engines carry: `ok`, the
# trade's fields (null when rejected), then the rejection's reason and detail (null when
# accepted). (name, SQL type) pairs; the types read the same in Spark and Flink SQL.
VERDICT_FIELDS: Final = (
    ("ok", "BOOLEAN"),
    ("exchange", "STRING"),
    ("symbol", "STRING"),
    ("trade_id", "STRING"),
    ("price", "DECIMAL(18,8)"),
    ("qty", "DECIMAL(18,8)"),
    ("side", "STRING"),
    ("ts", "BIGINT"),
    ("reason", "STRING"),
    ("detail", "STRING"),
)


class Reason:
    """Stable rejection reason codes (stored in raw.rejects.reason)."""

    ENCODING = "bad_encoding"
    MALFORMED_JSON = "malformed_json"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_FIELD = "missing_field"
    NULL_FIELD = "null_field"
    BAD_TYPE = "bad_type"
    BAD_EXCHANGE = "bad_exchange"
    BAD_SYMBOL = "bad_symbol"
    BAD_TRADE_ID = "bad_trade_id"
    BAD_NUMBER = "bad_number"
    OUT_OF_RANGE = "out_of_range"
    NOT_POSITIVE = "not_positive"
    BAD_SIDE = "bad_side"
    BAD_TS = "bad_ts"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class Trade:
    exchange: str
    symbol: str
    trade_id: str
    price: Decimal
    qty: Decimal
    side: str
    ts: int

    @property
    def key(self) -> str:
        """Kafka message key: `exchange:symbol`."""
        return f"{self.exchange}:{self.symbol}"

    @property
    def identity(self) -> tuple[str, str, str]:
        """Dedupe identity: the first message with it (in Kafka order) wins."""
        return (self.exchange, self.symbol, self.trade_id)

    def to_json(self) -> str:
        """The canonical message text (decimals with exactly 8 fractional digits)."""
        return json.dumps(
            {
                "exchange": self.exchange, "symbol": self.symbol, "trade_id": self.trade_id,
                "price": f"{self.price:.8f}", "qty": f"{self.qty:.8f}", "side": self.side,
                "ts": self.ts,
            },
            separators=(",", ":"),
        )


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str
    detail: str
    field: str | None = None

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


class _Num(str):
    """A JSON number kept as its literal text (never converted to float)."""

    __slots__ = ()


def _loads(text: str) -> Any:
    return json.loads(text, parse_float=_Num, parse_int=_Num, parse_constant=_reject_constant)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_decimal(value: object, field: str) -> Decimal | Rejection:
    """A DECIMAL(18,8) > 0 from a decimal string or a JSON number literal."""
    if isinstance(value, _Num):
        text = str(value)
    elif isinstance(value, str):
        text = value
        if not NUMBER_RE.fullmatch(text):
            return Rejection(Reason.BAD_NUMBER, f"{field} {text!r} is not a decimal number", field)
    else:
        return Rejection(Reason.BAD_TYPE, f"{field} must be a decimal string or a JSON number "
                         f"(got {_json_type(value)})", field)
    if "e" in text or "E" in text:
        return Rejection(Reason.BAD_NUMBER,
                         f"{field} {text!r}: exponent notation is not accepted", field)
    negative = text.startswith("-")
    digits = text[1:] if negative else text
    if not DECIMAL_RE.fullmatch(digits):
        return Rejection(Reason.OUT_OF_RANGE, f"{field} {text!r} exceeds DECIMAL(18,8): at most "
                         "10 integer and 8 fractional digits", field)
    number = Decimal(text)
    if negative or number <= 0:
        return Rejection(Reason.NOT_POSITIVE, f"{field} {text!r} must be > 0", field)
    return number


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, _Num):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def parse_trade(value: bytes | None) -> Trade | Rejection:
    """Validate one Kafka message value; never raises on bad input."""
    if value is None:
        return Rejection(Reason.MALFORMED_JSON, "empty message (null value)")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejection(Reason.ENCODING, f"not UTF-8: {exc.reason} at byte {exc.start}")
    try:
        obj = _loads(text)
    except (ValueError, RecursionError) as exc:
        return Rejection(Reason.MALFORMED_JSON, f"not JSON: {str(exc)[:120]}")
    if not isinstance(obj, dict):
        return Rejection(Reason.NOT_AN_OBJECT, f"a JSON object is required, got {_json_type(obj)}")
    for name in FIELDS:
        if name not in obj:
            return Rejection(Reason.MISSING_FIELD, f"field {name!r} is missing", name)
        if obj[name] is None:
            return Rejection(Reason.NULL_FIELD, f"field {name!r} is null", name)

    exchange, symbol, trade_id = obj["exchange"], obj["symbol"], obj["trade_id"]
    for name, val in (("exchange", exchange), ("symbol", symbol), ("side", obj["side"])):
        if not isinstance(val, str) or isinstance(val, _Num):
            return Rejection(Reason.BAD_TYPE, f"{name} must be a string (got {_json_type(val)})",
                             name)
    if not EXCHANGE_RE.fullmatch(exchange):
        return Rejection(Reason.BAD_EXCHANGE, f"exchange {exchange!r} must match [a-z0-9_]{{1,32}}",
                         "exchange")
    if not SYMBOL_RE.fullmatch(symbol):
        return Rejection(Reason.BAD_SYMBOL, f"symbol {symbol!r} must be BASE-QUOTE, each "
                         "[A-Z0-9]{1,16}", "symbol")
    if isinstance(trade_id, _Num):
        if not re.fullmatch(r"-?[0-9]+", trade_id):
            return Rejection(Reason.BAD_TYPE, f"trade_id {trade_id!s} must be a string or an "
                             "integer", "trade_id")
        trade_id = str(int(trade_id))
    elif not isinstance(trade_id, str):
        return Rejection(Reason.BAD_TYPE, f"trade_id must be a string or an integer (got "
                         f"{_json_type(trade_id)})", "trade_id")
    if not 1 <= len(trade_id) <= 64:
        return Rejection(Reason.BAD_TRADE_ID, f"trade_id must have 1-64 characters "
                         f"(has {len(trade_id)})", "trade_id")
    if not trade_id.isascii() and any("\ud800" <= c <= "\udfff" for c in trade_id):
        # A JSON escape of half a UTF-16 pair: no text, and no engine could store it.
        return Rejection(Reason.BAD_TRADE_ID, f"trade_id {trade_id!a} holds a lone UTF-16 "
                         "surrogate (not a character)", "trade_id")
    price = parse_decimal(obj["price"], "price")
    if isinstance(price, Rejection):
        return price
    qty = parse_decimal(obj["qty"], "qty")
    if isinstance(qty, Rejection):
        return qty
    side = obj["side"]
    if side not in ("buy", "sell"):
        return Rejection(Reason.BAD_SIDE, f"side {side!r} must be 'buy' or 'sell'", "side")
    ts = obj["ts"]
    if not isinstance(ts, _Num) or not re.fullmatch(r"-?[0-9]+", ts):
        return Rejection(Reason.BAD_TS, f"ts must be integer epoch milliseconds (got "
                         f"{_json_type(ts)} {str(ts)[:40]!r})", "ts")
    ts_ms = int(ts)
    if not 0 <= ts_ms <= MAX_TS_MS:
        return Rejection(Reason.BAD_TS, f"ts {ts_ms} is outside 0..{MAX_TS_MS}", "ts")
    return Trade(exchange, symbol, trade_id, price, qty, side, ts_ms)


def verdict(value: bytes | None) -> tuple[Any, ...]:
    """`parse_trade` as a flat tuple in VERDICT_FIELDS order (for engine UDFs)."""
    result = parse_trade(value)
    if isinstance(result, Rejection):
        return (False, None, None, None, None, None, None, None, result.reason, result.detail)
    return (True, result.exchange, result.symbol, result.trade_id, result.price, result.qty,
            result.side, result.ts, None, None)


def canonical_trade(text: str) -> Trade | None:
    """The fast path as engines run it: the trade if `text` is canonical and valid, else None.

    Never disagrees with `parse_trade` (None means "ask parse_trade").
    """
    match = _CANONICAL.match(text)
    if match is None:
        return None
    exchange, symbol, trade_id, price, qty, side, ts = match.groups()
    trade = Trade(exchange, symbol, trade_id, Decimal(price), Decimal(qty), side, int(ts))
    if trade.price <= 0 or trade.qty <= 0 or trade.ts > MAX_TS_MS:
        return None
    return trade
