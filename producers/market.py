"""A synthetic crypto market: deterministic for a seed, realistic enough to look at.

Several exchanges list the same instruments; each instrument's mid price is a random
walk shared by all exchanges (plus a small per-exchange basis), with volatility
regimes (calm / normal / stressed, switching as a Markov chain) and bursts of
activity. Trade sizes are heavy-tailed (Pareto), the taker side drifts with a
buy/sell imbalance that follows the price trend. Prices are rounded to the
instrument's tick and sizes to its lot, so every value is an exact DECIMAL(18,8).

Knobs for testing the platform: out-of-order jitter on event time, a fraction of
late trades (event time far in the past), of duplicates (an earlier message sent
again, byte for byte), and of malformed messages (each kind of contract violation).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from shared.contract import Trade

# Base instruments: (base, quote, start price, tick, lot).
INSTRUMENTS: tuple[tuple[str, str, str, str, str], ...] = (
    ("BTC", "USDT", "64250.00", "0.01", "0.00001"),
    ("ETH", "USDT", "3150.00", "0.01", "0.0001"),
    ("SOL", "USDT", "145.00", "0.001", "0.001"),
    ("XRP", "USDT", "0.5200", "0.0001", "0.1"),
    ("DOGE", "USDT", "0.15000", "0.00001", "1"),
    ("BTC", "USD", "64240.00", "0.01", "0.00000001"),
    ("ETH", "BTC", "0.04900", "0.00001", "0.0001"),
)

# Exchanges list a subset of instruments; (name, symbols listed, basis in bp).
EXCHANGES: tuple[tuple[str, tuple[int, ...], float], ...] = (
    ("binance", (0, 1, 2, 3, 4, 6), 0.0),
    ("coinbase", (1, 2, 5), 1.5),
    ("kraken", (0, 1, 5, 6), -1.0),
    ("okx", (0, 1, 2, 3, 4), 0.5),
    ("bybit", (0, 1, 2), 0.8),
)

REGIMES = {"calm": 0.3, "normal": 1.0, "stressed": 3.5}
REGIME_SWITCH = {  # per-second transition probabilities
    "calm": {"normal": 0.01},
    "normal": {"calm": 0.005, "stressed": 0.003},
    "stressed": {"normal": 0.03},
}

MALFORMED_KINDS = (
    "broken_json", "not_object", "missing_field", "null_field", "bad_side", "bad_symbol",
    "bad_exchange", "zero_qty", "negative_price", "too_many_decimals", "too_many_digits",
    "ts_string", "bad_number",
)


@dataclass(frozen=True)
class MarketConfig:
    seed: int = 42
    start_ms: int = 1_763_800_000_000
    jitter_ms: int = 0              # max event-time jitter (out-of-order delivery)
    late_fraction: float = 0.0      # trades whose event time is 1-10 minutes old
    duplicate_fraction: float = 0.0  # earlier messages sent again verbatim
    malformed_fraction: float = 0.0  # messages that break the contract
    trades_per_second: float = 1000.0  # event-time density (not the send rate)


@dataclass
class Message:
    key: bytes | None
    value: bytes
    kind: str  # "trade", "duplicate", "late", or "malformed:<kind>"
    trade: Trade | None = None


@dataclass
class _Instrument:
    exchange: str
    symbol: str
    mid: float
    tick: Decimal
    lot: Decimal
    basis: float
    next_id: int
    imbalance: float = 0.0
    history: list[float] = field(default_factory=list)


class Market:
    """An endless, seeded stream of trade messages (`messages()`)."""

    def __init__(self, config: MarketConfig | None = None) -> None:
        self.config = config or MarketConfig()
        self.rng = random.Random(self.config.seed)  # noqa: S311 - simulation, not security
        self.regime = "normal"
        self.now_ms = float(self.config.start_ms)
        self._second = int(self.now_ms // 1000)
        self._mids = [float(i[2]) for i in INSTRUMENTS]
        self._sent: list[Message] = []
        self.books: list[_Instrument] = []
        for name, listed, basis in EXCHANGES:
            for idx in listed:
                base, quote, _, tick, lot = INSTRUMENTS[idx]
                self.books.append(_Instrument(
                    exchange=name, symbol=f"{base}-{quote}", mid=self._mids[idx],
                    tick=Decimal(tick), lot=Decimal(lot), basis=basis,
                    next_id=self.rng.randrange(10**6, 10**9),
                ))
        self._book_instrument = [
            next(i for i, ins in enumerate(INSTRUMENTS) if f"{ins[0]}-{ins[1]}" == b.symbol)
            for b in self.books
        ]
        # Liquidity weights: BTC and ETH trade most, big exchanges most.
        self._weights = [
            (3.0 if b.symbol.startswith(("BTC", "ETH")) else 1.0)
            * (2.0 if b.exchange == "binance" else 1.0)
            for b in self.books
        ]

    # --- price process ----------------------------------------------------------------

    def _advance_clock(self) -> None:
        burst = 1.0
        if self.regime == "stressed" or self.rng.random() < 0.002:
            burst = self.rng.uniform(2.0, 6.0)
        gap = self.rng.expovariate(self.config.trades_per_second * burst)
        self.now_ms += gap * 1000.0
        second = int(self.now_ms // 1000)
        while self._second < second:
            self._second += 1
            self._step_second()

    def _step_second(self) -> None:
        for target, p in REGIME_SWITCH[self.regime].items():
            if self.rng.random() < p:
                self.regime = target
                break
        vol = REGIMES[self.regime] * 0.0004  # per-second sigma of log price
        common = self.rng.gauss(0.0, vol)
        for i in range(len(self._mids)):
            self._mids[i] *= math.exp(common * 0.6 + self.rng.gauss(0.0, vol * 0.8))

    def _trade(self, book_index: int) -> Trade:
        book = self.books[book_index]
        mid = self._mids[self._book_instrument[book_index]] * (1 + book.basis / 10_000)
        trend = (mid - book.mid) / book.mid if book.mid else 0.0
        book.mid = mid
        book.imbalance = 0.9 * book.imbalance + 0.1 * max(-1.0, min(1.0, trend * 2000))
        side = "buy" if self.rng.random() < 0.5 + 0.3 * book.imbalance else "sell"
        half_spread = mid * 0.00005 * REGIMES[self.regime]
        price_f = mid + (half_spread if side == "buy" else -half_spread)
        price = (Decimal(repr(price_f)) / book.tick).quantize(Decimal(1), ROUND_HALF_UP) * book.tick
        price = max(price, book.tick)
        # Heavy-tailed notional in USD (Pareto, alpha 1.6) around ~$300, capped.
        notional_usd = min(300.0 * self.rng.paretovariate(1.6), 5_000_000.0)
        quote_usd = self._mids[0] if book.symbol.endswith("-BTC") else 1.0
        price_usd = max(float(price) * quote_usd, 1e-9)
        lots = max(1, int(notional_usd / price_usd / float(book.lot)))
        qty = Decimal(lots) * book.lot
        book.next_id += self.rng.randint(1, 3)
        ts = int(self.now_ms)
        if self.config.jitter_ms:
            ts -= self.rng.randint(0, self.config.jitter_ms)
        return Trade(book.exchange, book.symbol, str(book.next_id), price, qty, side, max(ts, 0))

    # --- the message stream -------------------------------------------------------------

    def messages(self) -> Iterator[Message]:
        cfg = self.config
        while True:
            self._advance_clock()
            roll = self.rng.random()
            if roll < cfg.malformed_fraction:
                yield self._malformed()
                continue
            roll -= cfg.malformed_fraction
            if roll < cfg.duplicate_fraction and self._sent:
                original = self.rng.choice(self._sent)
                yield Message(original.key, original.value, "duplicate", original.trade)
                continue
            book_index = self.rng.choices(range(len(self.books)), self._weights)[0]
            trade = self._trade(book_index)
            kind = "trade"
            roll -= cfg.duplicate_fraction
            if roll < cfg.late_fraction:
                trade = Trade(trade.exchange, trade.symbol, trade.trade_id, trade.price,
                              trade.qty, trade.side, max(0, trade.ts - self.rng.randint(60_000,
                                                                                      600_000)))
                kind = "late"
            message = Message(trade.key.encode(), trade.to_json().encode(), kind, trade)
            if len(self._sent) < 10_000:
                self._sent.append(message)
            else:
                self._sent[self.rng.randrange(10_000)] = message
            yield message

    def _malformed(self) -> Message:
        kind = self.rng.choice(MALFORMED_KINDS)
        book = self.rng.choice(self.books)
        good: dict[str, object] = {
            "exchange": book.exchange, "symbol": book.symbol,
            "trade_id": f"bad-{self.rng.randrange(10**9)}", "price": "100.5", "qty": "1",
            "side": "buy", "ts": int(self.now_ms),
        }
        value: str
        if kind == "broken_json":
            value = json.dumps(good)[: self.rng.randint(1, 40)]
        elif kind == "not_object":
            value = json.dumps([good["exchange"], good["price"]])
        elif kind == "missing_field":
            good.pop(self.rng.choice(list(good)))
            value = json.dumps(good)
        elif kind == "null_field":
            good[self.rng.choice(list(good))] = None
            value = json.dumps(good)
        else:
            patches: dict[str, dict[str, object]] = {
                "bad_side": {"side": "BUY"}, "bad_symbol": {"symbol": "btcusdt"},
                "bad_exchange": {"exchange": "Bin Ance"}, "zero_qty": {"qty": "0"},
                "negative_price": {"price": "-3.2"},
                "too_many_decimals": {"price": "1.123456789"},
                "too_many_digits": {"price": "12345678901.5"},
                "ts_string": {"ts": "yesterday"}, "bad_number": {"qty": "1,5"},
            }
            value = json.dumps({**good, **patches[kind]})
        key = f"{book.exchange}:{book.symbol}".encode()
        return Message(key, value.encode(), f"malformed:{kind}")
