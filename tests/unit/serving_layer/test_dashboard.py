"""The dashboard server's refresh loop, on an in-memory stand-in for Trino's answers
(the real Trino is in tests/e2e/test_dashboard.py): what it asks, what it serves."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

from serving_layer.dashboard import Snapshots
from shared.config import Settings

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


class Answers:
    """Rows shaped like the serving views' for the SQL the server sends."""

    def __init__(self) -> None:
        self.sql: list[str] = []
        self.fail = False
        self.lock = threading.Lock()
        self.books = [("binance", "BTC-USDT"), ("okx", "ETH-USDT")]
        self.close = Decimal(8)  # of every bar; a test moves it

    def query(self, sql: str, params: Sequence[Any] | None = None, *,
              output: str = "arrow") -> pa.Table:
        with self.lock:
            self.sql.append(sql)
        if self.fail:
            raise ConnectionError("connection refused")
        params = list(params or [])
        if "serving.ticker" in sql:
            return pa.table({"exchange": ["binance"], "symbol": ["BTC-USDT"],
                             "price": [Decimal("100.5")], "ts": [T0]})
        if "serving.bars_1m" in sql:
            now = datetime.now(UTC).replace(second=0, microsecond=0)
            # The history query asks for more minutes than the quick one: older windows.
            starts = [now - timedelta(minutes=5), now] if "'180' MINUTE" in sql else [now]
            rows = [(e, s, w) for e, s in self.books for w in starts]
            n = len(rows)
            return pa.table({
                "exchange": [r[0] for r in rows], "symbol": [r[1] for r in rows],
                "window_start": [r[2] for r in rows], "open": [Decimal(1)] * n,
                "high": [Decimal(9)] * n, "low": [Decimal(1)] * n,
                "close": [self.close] * n, "volume": [Decimal(1)] * n,
                "trade_count": [3] * n, "vwap": [Decimal(1)] * n})
        if "serving.spread_1m" in sql:
            symbols = sorted({s for _, s in self.books})
            return pa.table({"symbol": symbols, "window_start": [T0] * len(symbols),
                             "spread": [Decimal("0.1")] * len(symbols),
                             "exchanges": [2] * len(symbols)})
        assert "serving.boundaries" in sql
        return pa.table({"view_name": ["bars_1m"], "boundary": [T0], "published_at": [T0]})


def _until(check: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.01)


def test_every_book_served_from_memory_with_a_bounded_number_of_queries(
        tmp_path: Path) -> None:
    answers = Answers()
    snapshots = Snapshots(Settings(home=tmp_path), "desk", 0.05, full_every=3,
                          client=answers)  # type: ignore[arg-type]
    try:
        a = snapshots.snapshot("binance", "BTC-USDT")
        b = snapshots.snapshot("okx", "ETH-USDT")
        assert [r["close"] for r in a["bars"]] == ["8", "8"] and "exchange" not in a["bars"][0]
        assert a["bars"][0]["window_start"] < a["bars"][1]["window_start"]  # oldest first
        assert len(b["bars"]) == 2
        assert b["spread"] == [{"window_start": T0.timestamp(), "spread": "0.1",
                                "exchanges": 2}]
        assert a["board"][0]["price"] == "100.5" and a["newest_trade"] == T0.timestamp()
        assert a["boundaries"][0]["view_name"] == "bars_1m"
        assert snapshots.snapshot("kraken", "SOL-USD")["bars"] == []
        # What the page gets: the same, as JSON, with the server's time of the answer.
        t0 = time.time()
        body = json.loads(snapshots.get("binance", "BTC-USDT"))
        assert body["server_time"] >= t0 - 0.01 and body["bars"] == a["bars"]
        assert body.keys() == a.keys()
        # The current bar moves: quick cycles update the recent window, keep the older.
        answers.close = Decimal(11)
        _until(lambda: snapshots.snapshot("binance", "BTC-USDT")["bars"][-1]["close"] == "11")
        assert len(snapshots.snapshot("binance", "BTC-USDT")["bars"]) == 2
        # Polls add no query: the loop's pace is the refresh, whatever the viewers do.
        before = len(answers.sql)
        t0 = time.monotonic()
        for _ in range(300):
            snapshots.snapshot("binance", "BTC-USDT")
        cycles = (time.monotonic() - t0) / 0.05 + 2
        assert len(answers.sql) - before <= 4 * cycles
        # Per cycle: bars and board; every third also spread and boundaries.
        assert sum("spread_1m" in q for q in answers.sql) < sum("bars_1m" in q
                                                                  for q in answers.sql)
    finally:
        snapshots.close()


def test_trino_down_keeps_the_last_data_and_says_so_then_recovers(tmp_path: Path) -> None:
    answers = Answers()
    snapshots = Snapshots(Settings(home=tmp_path), "desk", 0.05, client=answers)  # type: ignore[arg-type]
    try:
        good = snapshots.snapshot("binance", "BTC-USDT")
        assert good["trino"]["error"] is None and good["bars"]
        answers.fail = True
        _until(lambda: snapshots.snapshot("binance", "BTC-USDT")["trino"]["error"] is not None)
        stale = snapshots.snapshot("binance", "BTC-USDT")
        assert "connection refused" in stale["trino"]["error"]
        assert stale["bars"] == good["bars"] and stale["board"] == good["board"]
        assert stale["trino"]["ok_at"] <= stale["trino"]["error_since"]
        answers.fail = False
        _until(lambda: snapshots.snapshot("binance", "BTC-USDT")["trino"]["error"] is None)
    finally:
        snapshots.close()


def test_a_server_that_never_reached_trino_answers_with_the_error(tmp_path: Path) -> None:
    answers = Answers()
    answers.fail = True
    snapshots = Snapshots(Settings(home=tmp_path), "desk", 0.05, client=answers)  # type: ignore[arg-type]
    try:
        t0 = time.monotonic()
        snap = snapshots.snapshot("binance", "BTC-USDT")
        assert time.monotonic() - t0 < 5
        assert snap["bars"] == [] and "connection refused" in snap["trino"]["error"]
    finally:
        snapshots.close()
