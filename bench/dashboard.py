"""The desk's dashboard: time to first chart, update interval seen in the browser, and
the latency of its data with 8 concurrent viewers.

Private stack; the real speed job; a live generated stream (--rate trades/s); the
dashboard server (`concord dashboard`'s) in this process, reading Trino as desk.

1. Headless Chromium (harness.browser, real time) opens the page: time to first chart =
   the page's performance.now() when its first candles were drawn (navigation start ->
   chart). Then, over --seconds, the mean interval between changes of the current bar
   the page saw.
2. 8 viewers (HTTP clients polling /api/snapshot every second, as the page does) for
   --seconds: response time p50/p95, and the Trino time per snapshot (its four queries
   in parallel). Run twice: with the server's per-book cache (1 s, the default) and
   without (every poll queries Trino), to show what the cache buys.

    .venv/bin/python -m bench.dashboard [--rate 200] [--seconds 60]
"""

from __future__ import annotations

import argparse
import itertools
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

BOOK = ("binance", "BTC-USDT")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def viewers(settings: Settings, refresh_s: float, n: int, seconds: int) -> None:
    server = serve(settings, port=free_port(), refresh_s=refresh_s)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = (f"http://127.0.0.1:{server.server_address[1]}/api/snapshot?"
           f"exchange={BOOK[0]}&symbol={BOOK[1]}")
    latencies: list[float] = []
    stop = time.monotonic() + seconds

    def viewer() -> None:
        while time.monotonic() < stop:
            t0 = time.monotonic()
            with urllib.request.urlopen(url, timeout=60) as resp:
                resp.read()
            latencies.append((time.monotonic() - t0) * 1000)
            time.sleep(max(0.0, 1.0 - (time.monotonic() - t0)))

    threads = [threading.Thread(target=viewer) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    queries = list(server.snapshots.query_ms)
    server.shutdown()
    server.server_close()
    print(f"dashboard, {n} viewers, cache {refresh_s:g}s: {len(latencies)} polls; response "
          f"p50 {pct(latencies, 0.5):.0f} ms, p95 {pct(latencies, 0.95):.0f} ms; Trino per "
          f"snapshot p50 {pct(queries, 0.5):.0f} ms, p95 {pct(queries, 0.95):.0f} ms "
          f"({len(queries)} snapshots queried)", flush=True)


def browser(settings: Settings, seconds: int) -> None:
    server = serve(settings, port=free_port())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/?exchange={BOOK[0]}&symbol={BOOK[1]}"
    with Browser() as page:
        page.open(url)
        first = float(page.wait_for("document.body.dataset.firstChartMs", 60))
        time.sleep(seconds)
        changes = int(page.evaluate("Number(document.body.dataset.barChanges || 0)"))
        interval = page.evaluate("document.body.dataset.updateIntervalMs")
        polls = int(page.evaluate("Number(document.body.dataset.polls || 0)"))
    server.shutdown()
    server.server_close()
    print(f"dashboard in Chromium: first chart {first:.0f} ms after navigation start; over "
          f"{seconds}s the current bar changed {changes} times, every {interval} ms on "
          f"average ({polls} polls of 1 s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=60)
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
            browser(settings, args.seconds)
            viewers(settings, 1.0, 8, args.seconds)
            viewers(settings, 0.0, 8, args.seconds)
        finally:
            done.set()


if __name__ == "__main__":
    main()
