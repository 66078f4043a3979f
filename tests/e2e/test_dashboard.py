"""The desk's dashboard in headless Chromium, with trades flowing through the speed layer.

A live generated stream goes through the real speed job; `concord dashboard` serves the
page; Chromium (Debian's package, installed by infra/run_tests.sh) loads it, in real
time over the DevTools protocol (harness.browser). The chart renders (candles drawn on
canvases), the current bar changes while the page is open, the freshness indicator
and the board are filled, the live feed the page follows (serving_layer.live) holds
exactly the serving view's bars once the stream stops, and a screenshot is kept in
test-artifacts/dashboard.png; the ops strip shows what Prometheus sees. Then the page
says its data is stale: when the trades stop, when its server cannot reach Trino (and
the strip that Prometheus does not answer), when the server is gone.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest

from harness.browser import Browser, BrowserError
from harness.stack import own_home
from infra.kafka import ensure_topic
from infra.processes import free_port
from producers.market import MarketConfig
from producers.produce import ProduceReport, generated, produce
from serving_layer.live import Live
from serving_layer.refresh import refresh
from serving_layer.trino import query
from shared.config import Settings
from shared.views import BARS_1M
from speed_layer import control

pytestmark = pytest.mark.e2e
CONCORD = str(Path(sys.executable).with_name("concord"))
BOOK = ("binance", "BTC-USDT")


def _snapshot(port: int) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}/api/snapshot?exchange={BOOK[0]}&symbol={BOOK[1]}"
    with urllib.request.urlopen(url, timeout=30) as resp:
        body: dict[str, Any] = json.loads(resp.read())
        return body


def _feed_equals_serving(settings: Settings, feed: Live, timeout_s: float = 90) -> None:
    since = feed.partials.complete_from
    names = [*(m.name for m in BARS_1M.measures), "vwap"]
    sql = (f"SELECT exchange, symbol, window_start, {', '.join(names)} "
           f"FROM {settings.catalog}.serving.bars_1m "
           f"WHERE window_start >= from_unixtime({since.timestamp():.0f})")
    deadline = time.monotonic() + timeout_s
    while True:
        served = {(r[0], r[1], r[2].replace(tzinfo=UTC)): dict(zip(names, r[3:], strict=True))
                  for r in query(settings, sql)}
        got = {k: {n: r[n] for n in names} for k, r in feed.bars(since, None).items()}
        if got == served and got:
            return
        assert got, f"the live feed holds no row: {feed.error}"
        if time.monotonic() > deadline:
            diff = sorted(k for k in got.keys() | served.keys() if got.get(k) != served.get(k))
            pytest.fail(f"the live feed and serving.bars_1m differ in {len(diff)} of "
                        f"{len(served)} windows, e.g. {diff[:1]}: feed "
                        f"{got.get(diff[0]) if diff else None}, served "
                        f"{served.get(diff[0]) if diff else None}")
        time.sleep(3)


def test_dashboard_renders_and_the_current_bar_moves(
    stack: Settings, unique: str, tmp_path: Path, artifact_dir: Path
) -> None:
    settings = own_home(stack, tmp_path, topic=f"e2e-dash-{unique}")
    ensure_topic(settings, settings.topic, 2)
    refresh(settings)
    print(control.start(settings))
    feed = Live(settings)  # the page's live feed, read here too: compared with Trino below
    done = threading.Event()

    def stream() -> None:
        records = generated(MarketConfig(seed=21), count=None, duration_s=240, live=True)
        produce(settings, itertools.takewhile(lambda _: not done.is_set(), records),
                rate=150, report=ProduceReport(), progress=None)

    port = free_port()
    producer = threading.Thread(target=stream, daemon=True)
    producer.start()
    env = {**os.environ, **settings.as_env()}
    server = subprocess.Popen([CONCORD, "dashboard", "--port", str(port)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if _snapshot(port)["bars"]:
                    break
            except OSError:
                pass
            time.sleep(2)
        else:
            server.terminate()
            out = server.communicate(timeout=30)[0]
            pytest.fail(f"the dashboard never served a bar of the live book; its output:\n"
                        f"{out[-3000:]}")
        url = f"http://127.0.0.1:{port}/?exchange={BOOK[0]}&symbol={BOOK[1]}&stale_s=20"
        with Browser() as browser:
            browser.open(url)
            # The chart renders: candles drawn (canvases), the book's bars loaded.
            browser.wait_for("Number(document.getElementById('chart').dataset.bars) > 0", 60)
            assert browser.evaluate("document.querySelectorAll('#chart canvas').length") >= 2
            first = browser.evaluate("({...document.getElementById('current-bar').dataset})")
            # The current bar changes while trades flow and the page stays open.
            browser.wait_for("Number(document.body.dataset.barChanges || 0) >= 2", 90)
            now = browser.evaluate("({...document.getElementById('current-bar').dataset})")
            assert (now["window"], now["count"], now["close"]) != (
                first["window"], first["count"], first["close"])
            age = float(browser.evaluate("document.getElementById('freshness').dataset.ageS"))
            assert age < 60  # the freshness indicator: trades are flowing
            board = browser.evaluate("document.querySelector('#board tbody').innerText")
            assert f"{BOOK[0]} {BOOK[1]}" in board
            assert "UTC" in browser.evaluate("document.getElementById('boundary').innerText") \
                or "none yet" in browser.evaluate("document.getElementById('boundary').innerText")
            assert browser.evaluate("document.body.dataset.stale") == ""
            # The ops strip: what the session stack's Prometheus sees, alerts included.
            browser.wait_for("document.getElementById('ops').dataset.state === 'ok'", 60)
            strip = browser.evaluate("document.getElementById('ops').innerText")
            assert "kafka up" in strip and "trino up" in strip and "freshness" in strip, strip
            assert "no alerts" in strip or "FIRING" in strip or "PENDING" in strip, strip
            shot = artifact_dir / "dashboard.png"
            browser.screenshot(shot)
            assert shot.stat().st_size > 10_000

            live = _snapshot(port)["live"]
            assert live["enabled"] and live["records"] > 0 and not live["error"], live

            # The feed holds trades of a window it has whole (from the minute it started
            # in), before the trades stop.
            deadline = time.monotonic() + 150
            while not feed.bars(feed.partials.complete_from, None):
                assert time.monotonic() < deadline, f"the live feed got no rows: {feed.error}"
                time.sleep(2)

            # The trades stop: after stale_s seconds without one, the page says so.
            done.set()
            try:
                browser.wait_for("document.body.dataset.stale === 'trades'", 90)
            except BrowserError:
                snap = _snapshot(port)
                page = browser.evaluate(
                    "[document.body.dataset.stale, document.getElementById('stale').innerText,"
                    " document.body.dataset.polls,"
                    " document.getElementById('freshness').dataset.ageS]")
                pytest.fail(f"the page never said no trade came: (stale, its text, answers "
                            f"drawn, age) {page}; the server's newest trade "
                            f"{snap['newest_trade']}, its time {snap['server_time']}, "
                            f"version {snap['version']}")
            # The feed's bars (every book, every window since it was complete) equal the
            # serving view's once the committers have caught up: exactly, every measure.
            _feed_equals_serving(settings, feed)
            assert "no new trade" in browser.evaluate("document.getElementById('stale')"
                                                      ".innerText")
            # The server goes away: the page says it cannot refresh.
            server.terminate()
            server.wait(timeout=30)
            browser.wait_for("document.body.dataset.stale === 'server'", 30)

        # A server that cannot reach Trino serves no data, and the page says why.
        cut = {**env, "CONCORD_TRINO_HTTPS_PORT": str(free_port()),
               "CONCORD_TRINO_PORT": str(free_port()),
               "CONCORD_PROMETHEUS_PORT": str(free_port())}
        server = subprocess.Popen([CONCORD, "dashboard", "--port", str(port)], env=cut,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                assert _snapshot(port)["trino"]["error"]
                break
            except OSError:
                assert time.monotonic() < deadline, "the dashboard did not start"
                time.sleep(0.5)
        with Browser() as browser:
            browser.open(url)
            browser.wait_for("document.body.dataset.stale === 'trino'", 60)
            assert "Trino unreachable" in browser.evaluate(
                "document.getElementById('stale').innerText")
            # ... and the ops strip that Prometheus does not answer.
            browser.wait_for("document.getElementById('ops').dataset.state === 'unreachable'",
                             30)
            assert "Prometheus unreachable" in browser.evaluate(
                "document.getElementById('ops').innerText")
    finally:
        done.set()
        feed.close()
        server.terminate()
        server.wait(timeout=30)
        print(control.stop(settings))
        producer.join(timeout=30)
