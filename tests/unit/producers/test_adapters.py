"""Adapters on real-shaped samples (field layouts as the exchanges document them)."""

from __future__ import annotations

from decimal import Decimal

from producers.adapters import binance_symbol, from_binance, from_coinbase, to_contract_json
from shared.contract import Trade, parse_trade

BINANCE = (
    '{"e":"trade","E":1763800000125,"s":"BTCUSDT","t":5123456789,"p":"64250.12000000",'
    '"q":"0.01500000","T":1763800000123,"m":true,"M":true}'
)
COINBASE = (
    '{"type":"match","trade_id":862144551,"maker_order_id":"ac928c66-ca53-498f-9c13-a110027a60e8",'
    '"taker_order_id":"132fb6ae-456b-4654-b4e0-d681ac05cea1","side":"sell","size":"0.00513000",'
    '"price":"64250.01","product_id":"BTC-USD","sequence":93312455122,'
    '"time":"2025-11-22T08:26:40.123456Z"}'
)


def _parse(adapted: dict[str, object] | None) -> Trade:
    assert adapted is not None
    trade = parse_trade(to_contract_json(adapted))
    assert isinstance(trade, Trade), trade
    return trade


def test_binance_trade_maker_buyer_means_taker_sold() -> None:
    trade = _parse(from_binance(BINANCE))
    assert trade == Trade("binance", "BTC-USDT", "5123456789", Decimal("64250.12"),
                          Decimal("0.015"), "sell", 1763800000123)
    taker_buy = _parse(from_binance(BINANCE.replace('"m":true', '"m":false')))
    assert taker_buy.side == "buy"


def test_binance_combined_stream_wrapper() -> None:
    wrapped = '{"stream":"btcusdt@trade","data":' + BINANCE + "}"
    assert _parse(from_binance(wrapped)).trade_id == "5123456789"


def test_binance_symbols_split_on_known_quotes() -> None:
    assert binance_symbol("ETHBTC") == "ETH-BTC"
    assert binance_symbol("SOLFDUSD") == "SOL-FDUSD"
    assert binance_symbol("XYZ") is None


def test_coinbase_side_is_the_makers() -> None:
    trade = _parse(from_coinbase(COINBASE))
    assert trade.side == "buy"  # maker sold, so the taker bought
    assert trade.exchange == "coinbase" and trade.symbol == "BTC-USD"
    assert trade.ts == 1763800000123  # microseconds truncated to milliseconds
    assert trade.qty == Decimal("0.00513")
    assert trade.trade_id == "862144551"


def test_other_messages_are_not_adapted() -> None:
    assert from_binance('{"e":"aggTrade","s":"BTCUSDT"}') is None
    assert from_coinbase('{"type":"heartbeat"}') is None
    assert from_coinbase("not json") is None
