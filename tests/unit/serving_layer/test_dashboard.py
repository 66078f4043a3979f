"""The dashboard server's refresh loop, on an in-memory stand-in for Trino's answers
(the real Trino is in tests/e2e/test_dashboard.py): what it asks, what it serves."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from infra.processes import free_port
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


class Ticking:
    """A live feed that only changes its version (the page's long poll waits for it)."""

    def __init__(self) -> None:
        self.version = 0
        self.on_change: Callable[[], None] | None = None
        self.error = None
        self.records = 0

    def tick(self) -> None:
        self.version += 1
        assert self.on_change is not None  # the server listens
        self.on_change()

    def bars(self, *args: Any) -> dict[Any, Any]:
        return {}

    def last_trades(self) -> dict[Any, Any]:
        return {}

    def close(self) -> None:
        pass


def test_a_long_poll_is_answered_when_the_feed_changes_or_when_its_wait_ends(
        tmp_path: Path) -> None:
    feed = Ticking()
    # One refresh cycle, then none for a minute: only the feed moves the version.
    snapshots = Snapshots(Settings(home=tmp_path), "desk", 60, client=Answers(),  # type: ignore[arg-type]
                          live=feed)  # type: ignore[arg-type]
    try:
        first = json.loads(snapshots.get("binance", "BTC-USDT"))
        assert first["version"] == "1.0"
        # Nothing new: held for its whole wait, then the same data.
        t0 = time.monotonic()
        same = json.loads(snapshots.get("binance", "BTC-USDT", after="1.0", wait_s=0.3))
        assert time.monotonic() - t0 >= 0.3 and same["version"] == "1.0"
        # The feed changes while a request waits: answered then, with the new version.
        got: list[dict[str, Any]] = []
        waiting = threading.Thread(target=lambda: got.append(json.loads(
            snapshots.get("binance", "BTC-USDT", after="1.0", wait_s=4.5))))
        t0 = time.monotonic()
        waiting.start()
        time.sleep(0.2)
        assert not got  # still held
        feed.tick()
        waiting.join(10)
        assert got and got[0]["version"] == "1.1" and time.monotonic() - t0 < 3
        # A page behind (its version is not the server's) is answered at once.
        t0 = time.monotonic()
        assert json.loads(snapshots.get("binance", "BTC-USDT", after="1.0",
                                        wait_s=4.5))["version"] == "1.1"
        assert time.monotonic() - t0 < 1
    finally:
        snapshots.close()


def test_the_server_refuses_a_wait_it_would_not_honour(tmp_path: Path) -> None:
    from serving_layer.dashboard import DashboardServer

    settings = Settings(home=tmp_path)
    server = DashboardServer(free_port(), Snapshots(settings, "desk", 60, client=Answers()),  # type: ignore[arg-type]
                             settings)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/api/snapshot?exchange=binance&symbol=BTC-USDT"
    try:
        for wait in ("abc", "-1", "60000"):
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(f"{base}&after=1.0&wait_ms={wait}", timeout=10)  # noqa: S310 - http://127.0.0.1
            assert err.value.code == 400 and b"wait_ms must be" in err.value.read()
        with urllib.request.urlopen(f"{base}&after=0.0&wait_ms=500", timeout=10) as resp:  # noqa: S310 - http://127.0.0.1
            assert json.loads(resp.read())["version"] == "1.0"
    finally:
        server.shutdown()
        server.server_close()
