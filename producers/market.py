"""A synthetic crypto market: deterministic for a seed, realistic enough to look at.

Several exchanges list overlapping instruments. Each instrument's mid price is a
random walk shared by all exchanges (plus a small per-exchange basis), driven by a
common market factor, with volatility regimes (calm / normal / stressed, a Markov
chain stepped every second) and bursts of activity. Trade sizes are heavy-tailed
(Pareto notional in USD), the taker side leans with the recent price trend. Prices
sit on the instrument's tick and sizes on its lot, so every value is an exact
DECIMAL(18,8). Exchange-specific naming (binance's BTC-USDT vs coinbase's BTC-USD)
follows what each venue lists.

Knobs for testing the platform: out-of-order jitter on event time, a fraction of
late trades (event time 1-10 minutes old), of duplicates (an earlier message sent
again, byte for byte), and of malformed messages (each kind of contract violation).

Trades are drawn in vectorised blocks (numpy) and formatted with integer arithmetic,
which is what lets one core feed Kafka at 100k+ messages/s.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from shared.contract import Trade

# Instruments: (base, quote, start price, tick exponent, lot exponent); tick = 10^-k.
INSTRUMENTS: tuple[tuple[str, str, float, int, int], ...] = (
    ("BTC", "USDT", 64250.0, 2, 5),
    ("ETH", "USDT", 3150.0, 2, 4),
    ("SOL", "USDT", 145.0, 3, 3),
    ("XRP", "USDT", 0.52, 4, 1),
    ("DOGE", "USDT", 0.15, 5, 0),
    ("BTC", "USD", 64240.0, 2, 8),
    ("ETH", "BTC", 0.049, 5, 4),
)
# Exchanges: (name, instruments listed, basis in basis points, liquidity weight).
EXCHANGES: tuple[tuple[str, tuple[int, ...], float, float], ...] = (
    ("binance", (0, 1, 2, 3, 4, 6), 0.0, 2.0),
    ("coinbase", (1, 2, 5), 1.5, 1.2),
    ("kraken", (0, 1, 5, 6), -1.0, 0.8),
    ("okx", (0, 1, 2, 3, 4), 0.5, 1.0),
    ("bybit", (0, 1, 2), 0.8, 0.9),
)
REGIMES = ("calm", "normal", "stressed")
REGIME_VOL = np.array([0.3, 1.0, 3.5])
REGIME_SWITCH = np.array([  # per-second transition matrix, rows: from
    [0.99, 0.01, 0.0],
    [0.005, 0.992, 0.003],
    [0.0, 0.03, 0.97],
])
MALFORMED_KINDS = (
    "broken_json", "not_object", "missing_field", "null_field", "bad_side", "bad_symbol",
    "bad_exchange", "zero_qty", "negative_price", "too_many_decimals", "too_many_digits",
    "ts_string", "bad_number",
)
BLOCK = 2048
SCALE = 10**8


@dataclass(frozen=True)
class MarketConfig:
    seed: int = 42
    start_ms: int = 1_763_800_000_000
    jitter_ms: int = 0               # max event-time jitter (out-of-order delivery)
    late_fraction: float = 0.0       # trades whose event time is 1-10 minutes old
    duplicate_fraction: float = 0.0  # earlier messages sent again verbatim
    malformed_fraction: float = 0.0  # messages that break the contract
    trades_per_second: float = 1000.0  # event-time density (not the send rate)


@dataclass(frozen=True, slots=True)
class Message:
    """One Kafka message and what the generator meant it to be (the tests' oracle)."""

    key: bytes | None
    value: bytes
    kind: str  # "trade", "late", "duplicate", or "malformed:<kind>"
    fields: tuple[str, str, str, int, int, str, int] | None = None

    @property
    def trade(self) -> Trade | None:
        """The trade this message carries (None for malformed messages)."""
        if self.fields is None:
            return None
        ex, sym, tid, price_units, qty_units, side, ts = self.fields
        return Trade(ex, sym, tid, Decimal(price_units).scaleb(-8),
                     Decimal(qty_units).scaleb(-8), side, ts)


def _dec8(units: int) -> str:
    return f"{units // SCALE}.{units % SCALE:08d}"


class Market:
    """An endless, seeded stream of trade messages (`messages()`)."""

    def __init__(self, config: MarketConfig | None = None) -> None:
        self.config = config or MarketConfig()
        self.rng = np.random.default_rng(self.config.seed)
        self.regime = 1
        self.now_ms = float(self.config.start_ms)
        self.second = int(self.now_ms // 1000)
        self.mids = np.array([i[2] for i in INSTRUMENTS])
        books = [(name, idx, basis, weight)
                 for name, listed, basis, weight in EXCHANGES for idx in listed]
        self.book_exchange = [b[0] for b in books]
        self.book_instr = np.array([b[1] for b in books])
        self.book_symbol = [f"{INSTRUMENTS[b[1]][0]}-{INSTRUMENTS[b[1]][1]}" for b in books]
        self.book_key = [f"{b[0]}:{s}".encode() for b, s in zip(books, self.book_symbol,
                                                                  strict=True)]
        self.book_basis = np.array([1 + b[2] / 10_000 for b in books])
        self.book_tick_exp = np.array([INSTRUMENTS[b[1]][3] for b in books])
        self.book_lot_exp = np.array([INSTRUMENTS[b[1]][4] for b in books])
        self.book_quote_btc = np.array([INSTRUMENTS[b[1]][1] == "BTC" for b in books])
        liquidity = np.array([
            b[3] * (3.0 if INSTRUMENTS[b[1]][0] in ("BTC", "ETH") else 1.0) for b in books
        ])
        self.book_p = liquidity / liquidity.sum()
        self.next_id = self.rng.integers(10**6, 10**9, len(books))
        self.imbalance = np.zeros(len(books))
        self.last_mid = self.mids[self.book_instr] * self.book_basis
        self.recent: list[Message] = []

    # --- price process ----------------------------------------------------------------

    def _step_seconds(self, upto: int) -> None:
        while self.second < upto:
            self.second += 1
            self.regime = int(self.rng.choice(3, p=REGIME_SWITCH[self.regime]))
            vol = REGIME_VOL[self.regime] * 0.0004
            common = self.rng.normal(0.0, vol)
            self.mids = self.mids * np.exp(common * 0.6 + self.rng.normal(0.0, vol * 0.8,
                                                                          len(self.mids)))

    def _trades(self, n: int) -> list[Message]:
        """A block of n well-formed trades in event-time order (before jitter/late)."""
        rng, cfg = self.rng, self.config
        burst = rng.uniform(2.0, 6.0) if (self.regime == 2 or rng.random() < 0.02) else 1.0
        gaps = rng.exponential(1.0 / (cfg.trades_per_second * burst), n) * 1000.0
        times = self.now_ms + np.cumsum(gaps)
        self.now_ms = float(times[-1])
        seconds = (times // 1000).astype(np.int64)
        # Mid prices per distinct second of this block.
        uniq, sec_idx = np.unique(seconds, return_inverse=True)
        table = np.empty((len(uniq), len(self.mids)))
        for i, sec in enumerate(uniq):
            self._step_seconds(int(sec))
            table[i] = self.mids
        book = rng.choice(len(self.book_p), n, p=self.book_p)
        mid = table[sec_idx, self.book_instr[book]] * self.book_basis[book]
        # Taker side leans with the trend of each book since its last block.
        trend = (mid / self.last_mid[book]) - 1.0
        self.imbalance = 0.8 * self.imbalance
        np.add.at(self.imbalance, book, np.clip(trend * 200, -1, 1) * 0.2 / max(1, n / 50))
        self.last_mid[book] = mid
        buy = rng.random(n) < 0.5 + 0.3 * np.clip(self.imbalance[book], -1, 1)
        half_spread = 0.00005 * REGIME_VOL[self.regime]
        price = mid * np.where(buy, 1 + half_spread, 1 - half_spread)
        tick_exp = self.book_tick_exp[book]
        ticks = np.maximum(np.rint(price * 10.0**tick_exp), 1).astype(np.int64)
        price_units = ticks * (10 ** (8 - tick_exp)).astype(np.int64)
        notional_usd = np.minimum(300.0 * (rng.pareto(1.6, n) + 1.0), 5_000_000.0)
        quote_usd = np.where(self.book_quote_btc[book], table[sec_idx, 0], 1.0)
        lot_exp = self.book_lot_exp[book]
        lots = np.maximum(1, (notional_usd / (price_units / SCALE * quote_usd)
                              * 10.0**lot_exp).astype(np.int64))
        qty_units = lots * (10 ** (8 - lot_exp)).astype(np.int64)
        increments = rng.integers(1, 4, n)
        ids = np.empty(n, dtype=np.int64)
        for b in np.unique(book):
            mask = book == b
            run = self.next_id[b] + np.cumsum(increments[mask])
            ids[mask] = run
            self.next_id[b] = run[-1]
        ts = times.astype(np.int64)
        if cfg.jitter_ms:
            ts = ts - rng.integers(0, cfg.jitter_ms + 1, n)
        late = rng.random(n) < cfg.late_fraction
        ts = np.where(late, ts - rng.integers(60_000, 600_001, n), ts)
        ts = np.maximum(ts, 0)

        out = []
        for i in range(n):
            b = int(book[i])
            ex, sym = self.book_exchange[b], self.book_symbol[b]
            tid, pu, qu, t = str(ids[i]), int(price_units[i]), int(qty_units[i]), int(ts[i])
            side = "buy" if buy[i] else "sell"
            value = (f'{{"exchange":"{ex}","symbol":"{sym}","trade_id":"{tid}",'
                     f'"price":"{_dec8(pu)}","qty":"{_dec8(qu)}","side":"{side}","ts":{t}}}')
            out.append(Message(self.book_key[b], value.encode(), "late" if late[i] else "trade",
                               (ex, sym, tid, pu, qu, side, t)))
        return out

    # --- the message stream -------------------------------------------------------------

    def messages(self) -> Iterator[Message]:
        cfg = self.config
        while True:
            block = self._trades(BLOCK)
            rolls = self.rng.random(BLOCK)
            picks = self.rng.integers(0, 1 << 30, BLOCK)
            for i, message in enumerate(block):
                roll = float(rolls[i])
                if roll < cfg.malformed_fraction:
                    yield self._malformed(int(picks[i]))
                elif roll < cfg.malformed_fraction + cfg.duplicate_fraction and self.recent:
                    original = self.recent[int(picks[i]) % len(self.recent)]
                    yield Message(original.key, original.value, "duplicate", original.fields)
                if len(self.recent) < 10_000:
                    self.recent.append(message)
                else:
                    self.recent[int(picks[i]) % 10_000] = message
                yield message

    def _malformed(self, pick: int) -> Message:
        kind = MALFORMED_KINDS[pick % len(MALFORMED_KINDS)]
        b = (pick // len(MALFORMED_KINDS)) % len(self.book_p)
        good: dict[str, object] = {
            "exchange": self.book_exchange[b], "symbol": self.book_symbol[b],
            "trade_id": f"bad-{pick}", "price": "100.5", "qty": "1", "side": "buy",
            "ts": int(self.now_ms),
        }
        names = list(good)
        if kind == "broken_json":
            value = json.dumps(good)[: 1 + pick % 40]
        elif kind == "not_object":
            value = json.dumps([good["exchange"], good["price"]])
        elif kind == "missing_field":
            good.pop(names[pick % len(names)])
            value = json.dumps(good)
        elif kind == "null_field":
            good[names[pick % len(names)]] = None
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
        return Message(self.book_key[b], value.encode(), f"malformed:{kind}")
