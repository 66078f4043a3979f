"""`concord demo` (what `make demo` runs after `make up`): the whole platform, live.

Starts, each as a supervised detached process with its log under $CONCORD_HOME/logs:
- the serving views (`serve refresh`),
- the speed job (`speed start`),
- a live generated stream (`produce --live`: event times follow the wall clock, with
  some out-of-order, late, duplicate and malformed messages),
- the batch loop (`batch run --every N`: ingest, recompute, move the boundary),
- the dashboard (`dashboard`), and a reconcile loop (`reconcile --every 600`: its last
  result is in `concord status` and in Prometheus, where an alert watches it),
then waits for the first live bars in serving.bars_1m and prints what runs, where the
views are, and queries to try. `concord down` stops all of it (and Kafka and Trino).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from infra.processes import Service
from shared.config import REPO_ROOT, Settings
from shared.errors import first_line

DEMO_RATE = 200  # messages per second of the live stream
RECONCILE_EVERY_S = 600


def stream_service(settings: Settings) -> Service:
    return Service("demo-stream", settings.run_dir, settings.log_dir / "demo" / "stream.log", ())


def batch_service(settings: Settings) -> Service:
    return Service("batch-loop", settings.run_dir, settings.log_dir / "batch" / "loop.log", ())


def reconcile_service(settings: Settings) -> Service:
    return Service("reconcile-loop", settings.run_dir,
                   settings.log_dir / "demo" / "reconcile.log", ())


def dashboard_service(settings: Settings) -> Service:
    return Service("dashboard", settings.run_dir, settings.log_dir / "demo" / "dashboard.log",
                   (settings.dashboard_port,))


def _concord(*args: str) -> list[str]:
    return [sys.executable, "-m", "concord.cli", *args]


def start(settings: Settings, *, rate: int = DEMO_RATE, every_s: int | None = None,
          say: Callable[[str], None] = print) -> None:
    """Start what is not running yet; `every_s`: the batch loop's period (default
    CONCORD_BATCH_EVERY_S)."""
    # Imported here: the command line reads this module's defaults at every start.
    from serving_layer.refresh import refresh
    from serving_layer.trino import query
    from speed_layer import control

    env = {**os.environ, **settings.as_env()}
    say("serving views: " + ", ".join(
        line.split(":")[0].removeprefix(f"{settings.catalog}.serving.")
        for line in refresh(settings) if ".serving." in line))
    say(control.start(settings))
    for svc, cmd in (
        (stream_service(settings), _concord(
            "produce", "--live", "--rate", str(rate), "--duration", str(7 * 86_400),
            "--jitter-ms", "1500", "--late-fraction", "0.005", "--duplicate-fraction", "0.01",
            "--malformed-fraction", "0.005")),
        (batch_service(settings), _concord("batch", "run", "--every",
                                                   str(every_s or settings.batch_every_s))),
        (dashboard_service(settings), _concord("dashboard")),
        # The first comparison after one period: at the start there is nothing both
        # layers cover, and the box is busy starting everything else.
        (reconcile_service(settings), _concord("reconcile", "--every", str(RECONCILE_EVERY_S),
                                               "--delay", str(RECONCILE_EVERY_S))),
    ):
        if (pid := svc.pid()) is not None:
            say(f"{svc.name}: already running (pid {pid})")
            continue
        pid = svc.start(cmd, env=env, cwd=REPO_ROOT, ready=lambda: True, timeout_s=5)
        say(f"{svc.name}: started (pid {pid}), log {svc.log_file}")

    say("waiting for the first live bars in lake.serving.bars_1m ...")
    deadline = time.monotonic() + 240
    rows: list[list[object]] = []
    failure = ""
    while time.monotonic() < deadline:
        try:
            rows = query(settings, "SELECT exchange, symbol, window_start, close, trade_count "
                                   "FROM lake.serving.bars_1m WHERE window_start >= "
                                   "current_timestamp - INTERVAL '2' MINUTE "
                                   "ORDER BY trade_count DESC LIMIT 5")
        except Exception as exc:  # noqa: BLE001 - a loaded Trino fails a query; ask again
            failure = first_line(exc, 200) or repr(exc)
        if rows:
            break
        time.sleep(3)
    if not rows and failure:
        say(f"the last query for them failed: {failure}")
    for r in rows:
        say(f"  {r[0]:<10} {r[1]:<10} {r[2]:%H:%M} close {r[3]} trades {r[4]}")
    if not rows:
        say("no live bars yet: see the logs above (`concord speed status`)")
    if settings.monitoring:
        say(monitoring_summary(settings))


def monitoring_summary(settings: Settings, wait_s: float = 60) -> str:
    """Prometheus' targets, once all are up (or after `wait_s`): one line."""
    from infra.monitoring import prometheus_targets

    deadline = time.monotonic() + wait_s
    health: dict[str, str] = {}
    while True:
        try:
            health = prometheus_targets(settings)
        except Exception as exc:  # noqa: BLE001 - said, the demo goes on
            if time.monotonic() > deadline:
                return f"Prometheus {settings.prometheus_url} does not answer: {exc}"
        if health and all(h == "up" for h in health.values()) or time.monotonic() > deadline:
            break
        time.sleep(2)
    down = sorted(job for job, h in health.items() if h != "up")
    return (f"Prometheus {settings.prometheus_url}: {len(health) - len(down)} of {len(health)} "
            f"targets up ({', '.join(sorted(health))})"
            + (f"; not up: {', '.join(down)} (its /targets page says why)" if down else ""))


def stop(settings: Settings) -> list[str]:
    """Stop the demo's processes (stream, batch loop, speed job); their names."""
    from speed_layer import control

    stopped = [s.name for s in (stream_service(settings), batch_service(settings),
                                dashboard_service(settings), reconcile_service(settings))
               if s.stop()]
    if control.service(settings).stop(grace_s=60):  # also what a crashed job left running
        stopped.append("speed")
    return stopped


INSTRUCTIONS = """
Concord is running:
  Kafka {kafka} (topic {topic}) <- a live generated stream, {rate} trades/s
  speed layer (Flink)  -> lake.speed.*        `{concord} speed status`
  batch layer (Spark)  -> lake.raw.*, lake.batch.*, every {every} s
  serving layer (Trino {trino}) -> lake.serving.*: {views}
  dashboard            http://127.0.0.1:{dashboard_port}/?exchange=binance&symbol=BTC-USDT
  {monitoring}

Try:
  {concord} query "SELECT * FROM lake.serving.ticker ORDER BY exchange, symbol"
  {concord} query "SELECT window_start, open, high, low, close, volume, vwap
                 FROM lake.serving.bars_1m WHERE exchange = 'binance' AND symbol = 'BTC-USDT'
                 ORDER BY window_start DESC LIMIT 10"
  {concord} query "SELECT * FROM lake.serving.spread_1m ORDER BY window_start DESC LIMIT 10"
  {concord} query "SELECT * FROM lake.serving.boundaries"
  {concord} sql                (the Trino CLI; roles and passwords: README "Who may do what")
  {concord} reconcile          (speed vs batch, every window both cover)
  {concord} status             (health, and each layer's lag, last run, boundary)

Logs: {logs}
Stop everything: make down
"""


def concord_command() -> str:
    """How to call the CLI from the current directory (the venv's entry point)."""
    exe = Path(sys.executable).with_name("concord")
    try:
        return str(exe.relative_to(Path.cwd()))
    except ValueError:
        return str(exe)
