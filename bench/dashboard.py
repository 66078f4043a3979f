"""The desk's dashboard: time to first chart, how often the page changes, and the
response time of its data with 32 concurrent viewers across 4 books.

Private stack; the real speed job; a live generated stream (--rate trades/s); the
dashboard server (`concord dashboard`'s) in this process, reading Trino as desk.

1. Once the server has done its first refresh cycles (printed), headless Chromium
   (harness.browser, real time) opens the page of a book: time to first chart = the
   page's performance.now() when its first candles were drawn (navigation start ->
   chart).
2. With the page open, --viewers HTTP clients (long-polling /api/snapshot as the page
   does: `after` its last version, held up to `wait_ms`) spread over 4 books for
   --seconds: the time to answer a request that does not wait (one each second per
   viewer, beside its long polls; p50/p95) and the Trino time per refresh cycle of the
   server (its queries in parallel); then the mean interval between changes of the
   current bar and of the book's last trade that the page saw meanwhile.
Both with a server without the live feed (the current bar moves with Trino's refresh
cycles) and with it (serving_layer.live: with the speed job's checkpoints), side by side.
Targets (issue 14): first chart <= 1.5 s, a change at least every second, p95 <= 1 s.

    .venv/bin/python -m bench.dashboard [--rate 200] [--seconds 60] [--viewers 32]
"""

from __future__ import annotations

import argparse
import itertools
import json
import threading
import time
import urllib.request

from harness.browser import Browser
from harness.stack import private_stack
from infra.processes import free_port
from producers.market import MarketConfig
from producers.produce import ProduceReport, generated, produce
from serving_layer.dashboard import serve
from serving_layer.refresh import refresh
from shared.config import Settings
from speed_layer import control

BOOKS = [("binance", "BTC-USDT"), ("okx", "ETH-USDT"), ("bybit", "SOL-USDT"),
         ("binance", "ETH-USDT")]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def viewers(port: int, n: int, seconds: int, latencies: list[float], wait_ms: int
            ) -> list[threading.Thread]:
    """`n` viewers, each long-polling like the page and, once a second, asking without
    waiting (the response time measured: a long poll's time is mostly its wait)."""
    stop = time.monotonic() + seconds

    def viewer(book: tuple[str, str]) -> None:
        url = f"http://127.0.0.1:{port}/api/snapshot?exchange={book[0]}&symbol={book[1]}"
        after, probe_at = "", 0.0
        while time.monotonic() < stop:
            if time.monotonic() >= probe_at:
                t0 = time.monotonic()
                with urllib.request.urlopen(url, timeout=60) as resp:
                    resp.read()
                latencies.append((time.monotonic() - t0) * 1000)
                probe_at = t0 + 1.0
            wait = f"&after={after}&wait_ms={wait_ms}" if after else ""
            with urllib.request.urlopen(url + wait, timeout=60) as resp:  # noqa: S310 - http://127.0.0.1
                after = json.loads(resp.read())["version"]
            time.sleep(0.1)  # the page's gap between requests

    threads = [threading.Thread(target=viewer, args=(BOOKS[i % len(BOOKS)],))
               for i in range(n)]
    for t in threads:
        t.start()
    return threads


def measure(settings: Settings, seconds: int, n: int, *, live: bool, wait_ms: int
            ) -> tuple[float, float]:
    """The figures of one server (with or without the live feed); returns the mean
    intervals between changes of the page's current bar and of its last trade, ms."""
    print(f"--- dashboard server {'with' if live else 'without'} the live feed "
          f"(serving_layer.live); the page long-polls, held up to {wait_ms} ms", flush=True)
    server = serve(settings, port=free_port(), live=live)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    book = BOOKS[0]
    # A desk server that has been running: its first cycles done (cold Trino plans).
    t0 = time.monotonic()
    while server.snapshots.cycles < 2:
        time.sleep(0.1)
    print(f"dashboard server: first refresh cycles done {time.monotonic() - t0:.1f}s after "
          "start", flush=True)
    try:
        with Browser() as page:
            page.open(f"{base}/?exchange={book[0]}&symbol={book[1]}&wait_ms={wait_ms}")
            first = float(page.wait_for("document.body.dataset.firstChartMs", 60))
            print(f"dashboard in Chromium: first chart {first:.0f} ms after navigation start "
                  f"(target <= 1500 ms)", flush=True)
            latencies: list[float] = []
            server.snapshots.query_ms.clear()
            start_changes = int(page.evaluate("Number(document.body.dataset.barChanges || 0)"))
            start_trades = int(page.evaluate("Number(document.body.dataset.priceChanges || 0)"))
            t0 = time.monotonic()
            for t in viewers(server.server_address[1], n, seconds, latencies, wait_ms):
                t.join()
            elapsed = time.monotonic() - t0
            changes = int(page.evaluate("Number(document.body.dataset.barChanges || 0)"))
            trades = int(page.evaluate("Number(document.body.dataset.priceChanges || 0)"))
            polls = int(page.evaluate("Number(document.body.dataset.polls || 0)"))
            stale = page.evaluate("document.body.dataset.stale")
        queries = list(server.snapshots.query_ms)
        every = elapsed * 1000 / max(1, changes - start_changes)
        every_trade = elapsed * 1000 / max(1, trades - start_trades)
        print(f"dashboard, {n} viewers over {len(BOOKS)} books for {seconds}s: "
              f"{len(latencies)} requests without a wait; response p50 "
              f"{pct(latencies, 0.5):.0f} ms, p95 "
              f"{pct(latencies, 0.95):.0f} ms (target <= 1000); Trino per refresh cycle "
              f"p50 {pct(queries, 0.5):.0f} ms, p95 {pct(queries, 0.95):.0f} ms "
              f"({len(queries)} cycles)", flush=True)
        print(f"meanwhile the page's current bar changed {changes - start_changes} times: "
              f"every {every:.0f} ms; its last trade {trades - start_trades} times: every "
              f"{every_trade:.0f} ms (target <= 1000 ms each; {polls} answers drawn; stale "
              f"flag {stale!r})", flush=True)
        return every, every_trade
    finally:
        server.shutdown()
        server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--viewers", type=int, default=32)
    parser.add_argument("--wait-ms", type=int, default=1000,
                        help="the longest the server holds a request of the page and the "
                        "viewers for a change (the page's default)")
    args = parser.parse_args()
    with private_stack() as settings:
        done = threading.Event()
        try:
            refresh(settings)
            print(control.start(settings), flush=True)

            def stream() -> None:
                records = generated(MarketConfig(seed=4), count=None, duration_s=3600,
                                    live=True)
                produce(settings, itertools.takewhile(lambda _: not done.is_set(), records),
                        rate=args.rate,
                        report=ProduceReport(), progress=None)

            threading.Thread(target=stream, daemon=True).start()
            time.sleep(30)  # the job's first seconds, and a first bar
            before = measure(settings, args.seconds, args.viewers, live=False,
                             wait_ms=args.wait_ms)
            after = measure(settings, args.seconds, args.viewers, live=True,
                            wait_ms=args.wait_ms)
            print(f"current bar changes every {before[0]:.0f} ms without the live feed, "
                  f"{after[0]:.0f} ms with it: {before[0] / after[0]:.2f}x as often; the "
                  f"last trade every {before[1]:.0f} ms vs {after[1]:.0f} ms: "
                  f"{before[1] / after[1]:.2f}x", flush=True)
        finally:
            done.set()


if __name__ == "__main__":
    main()
