"""Exchange message formats mapped into the trade contract.

- Binance `trade` stream events (raw or wrapped as a combined-stream `{"stream","data"}`):
  `m` true means the buyer was the maker, so the taker sold: side = "sell".
- Coinbase Exchange `match` / `last_match` messages: `side` is the maker's order side,
  so the taker's side is the opposite.

An adapter returns the contract message (a dict ready for JSON) or None when the line is
not a message of its format; the caller then sends the line verbatim so that the
ingest rejects it with a reason instead of it vanishing here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

# Quote assets recognised when splitting Binance's concatenated symbols, longest first.
BINANCE_QUOTES = (
    "FDUSD", "USDT", "USDC", "TUSD", "BUSD", "DAI", "BTC", "ETH", "BNB", "EUR", "TRY",
    "BRL", "GBP", "JPY", "AUD", "USD",
)

Adapter = Callable[[str], dict[str, Any] | None]


def _load(line: str) -> Any:
    try:
        return json.loads(line, parse_float=str, parse_int=str)
    except ValueError:
        return None


def binance_symbol(symbol: str) -> str | None:
    """'BTCUSDT' -> 'BTC-USDT' (None when no known quote asset ends it)."""
    for quote in BINANCE_QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return f"{symbol[: -len(quote)]}-{quote}"
    return None


def from_binance(line: str) -> dict[str, Any] | None:
    obj = _load(line)
    if isinstance(obj, dict) and isinstance(obj.get("data"), dict):
        obj = obj["data"]
    if not isinstance(obj, dict) or obj.get("e") != "trade":
        return None
    symbol = binance_symbol(str(obj.get("s", "")))
    maker_is_buyer = obj.get("m")
    if symbol is None or not isinstance(maker_is_buyer, bool):
        return None
    return {
        "exchange": "binance",
        "symbol": symbol,
        "trade_id": obj.get("t"),
        "price": obj.get("p"),
        "qty": obj.get("q"),
        "side": "sell" if maker_is_buyer else "buy",
        "ts": int(obj["T"]) if str(obj.get("T", "")).isdigit() else obj.get("T"),
    }


def coinbase_time_ms(text: str) -> int | None:
    """'2014-11-07T08:19:27.028459Z' -> epoch milliseconds (microseconds truncated)."""
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    # Whole seconds exactly, then milliseconds by integer division: no float rounding.
    return int(when.replace(microsecond=0).timestamp()) * 1000 + when.microsecond // 1000


def from_coinbase(line: str) -> dict[str, Any] | None:
    obj = _load(line)
    if not isinstance(obj, dict) or obj.get("type") not in ("match", "last_match"):
        return None
    maker_side = obj.get("side")
    if maker_side not in ("buy", "sell"):
        return None
    ts = coinbase_time_ms(str(obj.get("time", "")))
    if ts is None:
        return None
    return {
        "exchange": "coinbase",
        "symbol": obj.get("product_id"),
        "trade_id": obj.get("trade_id"),
        "price": obj.get("price"),
        "qty": obj.get("size"),
        "side": "sell" if maker_side == "buy" else "buy",
        "ts": ts,
    }


def to_contract_json(msg: dict[str, Any]) -> bytes:
    """Contract JSON; trade_id and numbers kept as the exchange's own text."""
    return json.dumps(msg, separators=(",", ":")).encode()


ADAPTERS: dict[str, Adapter] = {"binance": from_binance, "coinbase": from_coinbase}
