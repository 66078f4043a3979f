"""serving_layer.live: the feed's merge of partial rows, against the plain-Python oracle,
and how the dashboard lays it over Trino's rows (the real topic: tests/e2e/test_dashboard.py)."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

from producers.market import Market, MarketConfig
from serving_layer.dashboard import Snapshots
from serving_layer.live import Partials
from shared.config import Settings
from shared.contract import Trade
from shared.views import BARS_1M, VIEWS, grain
from tests.oracle import view_rows
from tests.view_cases import EDGE_TRADES, grain_partials

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
BAR_MEASURES = [m.name for m in BARS_1M.measures]


def _trades(n: int = 3000, seed: int = 5) -> list[Trade]:
    return [*EDGE_TRADES, *(m.trade for m in itertools.islice(
        Market(MarketConfig(seed=seed)).messages(), n) if m.trade)]


def test_partial_rows_in_any_batches_merge_to_the_oracles_bars() -> None:
    trades = _trades()
    rows = grain_partials(grain(VIEWS.values()), trades, slices=5)
    random.Random(3).shuffle(rows)
    partials = Partials(EPOCH)
    for i in range(0, len(rows), 37):  # as the consumer gets them: batch by batch
        partials.add(rows[i:i + 37])
    got = partials.view_rows(BARS_1M, EPOCH)
    want = view_rows(trades, BARS_1M.keys, BARS_1M.window_seconds, BAR_MEASURES, ["vwap"])
    assert got.keys() == want.keys()
    for key, row in got.items():
        assert {m: row[m] for m in [*BAR_MEASURES, "vwap"]} == want[key], key
        # As Trino returns them: prices and volumes at 8 decimals, the notional at 16.
        assert row["close"].as_tuple().exponent == -8
        assert row["notional"].as_tuple().exponent == -16


def test_the_last_trade_of_each_book_is_the_tickers() -> None:
    trades = _trades(seed=9)
    partials = Partials(EPOCH)
    partials.add(grain_partials(grain(VIEWS.values()), trades, slices=3))
    last: dict[tuple[str, str], Trade] = {}
    for t in trades:
        book = (t.exchange, t.symbol)
        if book not in last or (t.ts, t.trade_id) > (last[book].ts, last[book].trade_id):
            last[book] = t
    assert partials.last_trades() == {book: (t.price, t.ts) for book, t in last.items()}


def test_windows_before_the_feed_was_complete_are_left_out() -> None:
    trades = _trades(seed=11)
    rows = grain_partials(grain(VIEWS.values()), trades, slices=2)
    starts = sorted({r["window_start"] for r in rows})
    cut = starts[len(starts) // 2]
    partials = Partials(cut)
    partials.add(rows)
    got = partials.view_rows(BARS_1M, EPOCH)
    assert got and all(key[-1] >= cut for key in got)
    want = view_rows([t for t in trades if t.ts >= cut.timestamp() * 1000], BARS_1M.keys,
                     BARS_1M.window_seconds, BAR_MEASURES)
    assert {k: {m: r[m] for m in BAR_MEASURES} for k, r in got.items()} == want
    partials.forget_before(starts[-1])
    assert {key[-1] for key in partials.view_rows(BARS_1M, EPOCH)} == {starts[-1]}


class Feed:
    """The dashboard's view of a live feed (bars, last trades, version) over `Partials`
    filled in memory: the overlay's rules without a Kafka consumer."""

    def __init__(self, partials: Partials) -> None:
        self.partials = partials
        self.error = None
        self.records = 1

    @property
    def version(self) -> int:
        return self.partials.version

    def bars(self, since: datetime, boundary: datetime | None,
             book: tuple[str, str] | None = None) -> dict[Any, Any]:
        return self.partials.bars(since, boundary, book)

    def last_trades(self) -> dict[Any, Any]:
        return self.partials.last_trades()

    def close(self) -> None:
        pass


class Trino:
    """Trino's answers: `bars` rows of one book, a board, the bars_1m boundary."""

    def __init__(self, bars: list[dict[str, Any]], board_ts: datetime,
                 boundary: datetime) -> None:
        self.bars, self.board_ts, self.boundary = bars, board_ts, boundary

    def query(self, sql: str, params: Any = None, *, output: str = "arrow") -> pa.Table:
        if "serving.ticker" in sql:
            return pa.table({"exchange": ["binance"], "symbol": ["BTC-USDT"],
                             "price": [Decimal("1.00000000")], "ts": [self.board_ts]})
        if "serving.bars_1m" in sql:
            return pa.Table.from_pylist(self.bars)
        if "serving.spread_1m" in sql:
            return pa.table({"symbol": ["BTC-USDT"], "window_start": [self.boundary],
                             "spread": [Decimal(0)], "exchanges": [1]})
        return pa.table({"view_name": ["bars_1m"], "boundary": [self.boundary],
                         "published_at": [self.boundary]})


def _trade(trade_id: str, price: str, at: datetime) -> Trade:
    return Trade("binance", "BTC-USDT", trade_id, Decimal(price), Decimal(1), "buy",
                 int(at.timestamp() * 1000))


def test_the_page_takes_the_feeds_row_where_it_counts_more_trades(tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    old, mid, current = now - timedelta(minutes=2), now - timedelta(minutes=1), now
    feed_trades = [
        _trade("a", "10", old + timedelta(seconds=1)),      # below the boundary: never
        _trade("b", "20", mid + timedelta(seconds=1)),      # as many as Trino: same row
        _trade("c", "30", current + timedelta(seconds=1)),  # two where Trino has one
        _trade("d", "31", current + timedelta(seconds=2)),
    ]
    partials = Partials(EPOCH)
    partials.add(grain_partials(grain(VIEWS.values()), feed_trades, slices=1))

    def bar(start: datetime, close: str, count: int) -> dict[str, Any]:
        return {"exchange": "binance", "symbol": "BTC-USDT", "window_start": start,
                "open": Decimal(close), "high": Decimal(close), "low": Decimal(close),
                "close": Decimal(close), "volume": Decimal(count), "trade_count": count,
                "vwap": Decimal(close)}

    trino = Trino([bar(old, "11", 1), bar(mid, "20", 1), bar(current, "30", 1)],
                  board_ts=current + timedelta(seconds=1), boundary=mid)
    snapshots = Snapshots(Settings(home=tmp_path), "desk", 60, client=trino,  # type: ignore[arg-type]
                          live=Feed(partials))  # type: ignore[arg-type]
    try:
        page = snapshots.snapshot("binance", "BTC-USDT")
        by_start = {r["window_start"]: r for r in page["bars"]}
        assert by_start[old.timestamp()]["close"] == "11"  # the batch layer's window
        assert by_start[mid.timestamp()]["close"] == "20"
        assert by_start[current.timestamp()]["trade_count"] == 2
        assert by_start[current.timestamp()]["close"] == "31.00000000"
        assert by_start[current.timestamp()]["vwap"] == "30.50000000"
        # The board: the feed knows a later trade than Trino's ticker.
        (row,) = page["board"]
        assert row["price"] == "31.00000000"
        assert row["ts"] == (current + timedelta(seconds=2)).timestamp()
        assert page["newest_trade"] == row["ts"] and page["live"]["enabled"]
        # A new partial row changes the page without a refresh cycle.
        cycle = snapshots.cycles
        partials.add(grain_partials(grain(VIEWS.values()),
                                    [_trade("e", "32", current + timedelta(seconds=3))], 1))
        page = snapshots.snapshot("binance", "BTC-USDT")
        assert {r["window_start"]: r for r in page["bars"]}[current.timestamp()][
            "trade_count"] == 3
        assert snapshots.cycles == cycle
        body = snapshots.get("binance", "BTC-USDT")
        assert b'"trade_count": 3' in body
    finally:
        snapshots.close()
