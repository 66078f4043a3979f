"""`concord dashboard`: the trading desk's live page, read through Trino as `desk`.

    http://127.0.0.1:8050/?exchange=binance&symbol=BTC-USDT

One page (serving_layer/dashboard_static/): a candlestick chart of serving.bars_1m for
the chosen book with its volume under it and the current bar updating as trades
arrive; a board of last prices across exchanges (serving.ticker); the cross-exchange
spread of the symbol (serving.spread_1m); an always-visible freshness indicator (age
of the newest trade) and the batch boundary (serving.boundaries). The chart library is
TradingView Lightweight Charts (`make setup` fetches it from npm).

The page polls GET /api/snapshot?exchange=&symbol= every second. The server answers
from a cache refreshed at most once per --refresh-s per book (four Trino queries run
in parallel), so the load on Trino does not grow with the number of viewers. Decimals
travel as strings (exact); the page parses them for drawing only.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pyarrow as pa

from infra.artifacts import charts_js
from serving_layer.client import Client
from shared.config import Settings

STATIC = Path(__file__).resolve().parent / "dashboard_static"
HISTORY_MINUTES = 180


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")  # plain digits, never 0E-8
    if isinstance(value, datetime):
        return value.astimezone(UTC).timestamp()
    return value


@dataclass
class _Entry:
    at: float = 0.0
    body: bytes = b""
    lock: threading.Lock = field(default_factory=threading.Lock)


class Snapshots:
    """What the page shows, per book, fetched from Trino at most every `refresh_s`."""

    def __init__(self, settings: Settings, user: str, refresh_s: float) -> None:
        self.settings = settings
        self.client = Client(settings, user=user)
        self.refresh_s = refresh_s
        self.pool = ThreadPoolExecutor(max_workers=4)
        self.cache: dict[tuple[str, str], _Entry] = {}
        self.guard = threading.Lock()
        self.query_ms: list[float] = []  # per snapshot: the slowest of its parallel queries

    def _rows(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        table = self.client.query(sql, params, output="arrow")
        assert isinstance(table, pa.Table)
        return [{n: _plain(v) for n, v in row.items()} for row in table.to_pylist()]

    def fetch(self, exchange: str, symbol: str) -> dict[str, Any]:
        cat = self.settings.catalog
        since = f"current_timestamp - INTERVAL '{HISTORY_MINUTES}' MINUTE"
        queries = {
            "bars": (f"SELECT window_start, open, high, low, close, volume, trade_count, vwap "  # noqa: S608 - fixed names; values bound
                     f"FROM {cat}.serving.bars_1m WHERE exchange = ? AND symbol = ? AND "
                     f"window_start >= {since} ORDER BY window_start", [exchange, symbol]),
            "board": (f"SELECT exchange, symbol, price, ts FROM {cat}.serving.ticker "  # noqa: S608 - fixed names
                      "ORDER BY symbol, exchange", []),
            "spread": (f"SELECT window_start, spread, exchanges FROM {cat}.serving.spread_1m "  # noqa: S608 - fixed names; values bound
                       f"WHERE symbol = ? AND window_start >= {since} ORDER BY window_start",
                       [symbol]),
            "boundaries": (f"SELECT view_name, boundary, published_at FROM "  # noqa: S608 - fixed names
                           f"{cat}.serving.boundaries", []),
        }
        t0 = time.monotonic()
        futures = {k: self.pool.submit(self._rows, sql, params)
                   for k, (sql, params) in queries.items()}
        out: dict[str, Any] = {k: f.result() for k, f in futures.items()}
        self.query_ms.append((time.monotonic() - t0) * 1000)
        out["exchange"], out["symbol"], out["server_time"] = exchange, symbol, time.time()
        newest = max((r["ts"] for r in out["board"] if r["ts"] is not None), default=None)
        out["newest_trade"] = newest
        return out

    def get(self, exchange: str, symbol: str) -> bytes:
        with self.guard:
            entry = self.cache.setdefault((exchange, symbol), _Entry())
        with entry.lock:  # one fetch per book at a time; the others wait and share it
            if time.monotonic() - entry.at >= self.refresh_s:
                entry.body = json.dumps(self.fetch(exchange, symbol)).encode()
                entry.at = time.monotonic()
            return entry.body


def make_handler(snapshots: Snapshots, settings: Settings) -> type[BaseHTTPRequestHandler]:
    files = {
        "/": (STATIC / "index.html", "text/html; charset=utf-8"),
        "/app.js": (STATIC / "app.js", "text/javascript; charset=utf-8"),
        "/lightweight-charts.js": (charts_js(settings), "text/javascript; charset=utf-8"),
    }

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per poll would drown the log

        def _send(self, status: HTTPStatus, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the viewer left (closed the tab) while we answered

        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path in files:
                path, kind = files[url.path]
                self._send(HTTPStatus.OK, path.read_bytes(), kind)
                return
            if url.path != "/api/snapshot":
                self._send(HTTPStatus.NOT_FOUND, b"not found", "text/plain")
                return
            args = parse_qs(url.query)
            exchange = args.get("exchange", [""])[0]
            symbol = args.get("symbol", [""])[0]
            if not exchange or not symbol:
                self._send(HTTPStatus.BAD_REQUEST, b'{"error": "exchange and symbol are '
                           b'required"}', "application/json")
                return
            try:
                body = snapshots.get(exchange, symbol)
            except Exception as exc:  # noqa: BLE001 - the page shows it and keeps polling
                self._send(HTTPStatus.BAD_GATEWAY, json.dumps({"error": str(exc)}).encode(),
                           "application/json")
                return
            self._send(HTTPStatus.OK, body, "application/json")

    return Handler


class DashboardServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, snapshots: Snapshots, settings: Settings) -> None:
        super().__init__(("127.0.0.1", port), make_handler(snapshots, settings))
        self.snapshots = snapshots


def serve(settings: Settings, *, port: int = 8050, user: str = "desk",
          refresh_s: float = 1.0) -> DashboardServer:
    """The dashboard's HTTP server on 127.0.0.1:`port` (not started: call serve_forever)."""
    return DashboardServer(port, Snapshots(settings, user, refresh_s), settings)
