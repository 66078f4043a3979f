"""Soak (issue 15): the demo's processes for a long while under load, watched for growth.

On a private stack with monitoring on (as `make demo` runs it: Prometheus and the
exporter scraping every 10 s), `concord demo`'s processes run (the speed job, a live
stream at `--rate` messages/s, the batch loop every `--batch-every` seconds, the
dashboard, the reconcile loop) and
`--readers` threads query the serving layer as the desk does (serving.bars_1m of one
book for the last hour, serving.ticker), then pause `--think` seconds, each answer also
measuring freshness: the age of the newest trade serving.ticker shows. (Back to back,
8 readers held Trino at ~1.1 of the 2 cores and left the batch loop ~0.06 core: a
saturation test, not a soak.) Every `--every` seconds (and at the end) it
prints: Kafka lag of the speed job and of the batch layer, each process's RSS (with its
children), freshness p50/p99 of the interval, each lake table's file count and Delta log
length (commits since its last checkpoint), CONCORD_HOME's size on disk.

Pass: every series flat or bounded over the run. A series is bounded when its maximum
over the second half is at most `--slack` (default 1.25) times its maximum over the
first half plus a small absolute allowance (1,000 messages of lag, 64 MiB of RSS, 16
files, 10 commits, 2 s of freshness); CONCORD_HOME's disk use may grow with the data (it
holds the raw trades) and is printed per million messages. The first `--warmup` seconds
are not judged (JVMs warm up, the first batch run catches up).

    python -m bench.soak                      # 30 min at 5,000 msg/s
    python -m bench.soak --minutes 5 --rate 500
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

from concord import demo
from concord.metrics import exporter_service
from concord.status import layer_status
from harness.stack import private_stack
from infra.monitoring import prometheus_service
from infra.processes import cpu_seconds, rss_bytes
from infra.services import kafka_service, trino_service
from serving_layer.trino import query
from shared.config import Settings
from speed_layer import control

ALLOW = {"lag": 1_000, "rss_mb": 64, "files": 16, "log": 10, "fresh_s": 2.0}


def say(text: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {text}", flush=True)


class Readers:
    """`n` threads each querying the serving views, then pausing `think_s` (0: back to
    back); freshness per answer."""

    def __init__(self, settings: Settings, n: int, think_s: float) -> None:
        self.settings = settings
        self.think_s = think_s
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.fresh: list[float] = []
        self.latency: list[float] = []
        self.errors = 0
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True)
                        for i in range(n)]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def run(self, i: int) -> None:
        books = [("binance", "BTC-USDT"), ("coinbase", "ETH-USD"), ("kraken", "BTC-USD"),
                 ("binance", "ETH-USDT")]
        exchange, symbol = books[i % len(books)]
        cat = self.settings.catalog
        bars = (f"SELECT window_start, close, volume FROM {cat}.serving.bars_1m WHERE exchange "
                f"= '{exchange}' AND symbol = '{symbol}' AND window_start >= "
                "current_timestamp - INTERVAL '1' HOUR ORDER BY window_start")
        ticker = f"SELECT max(ts) FROM {cat}.serving.ticker"
        while not self.stop.is_set():
            t0 = time.monotonic()
            try:
                query(self.settings, bars)
                newest = query(self.settings, ticker)[0][0]
            except Exception:  # noqa: BLE001 - counted; the soak goes on
                with self.lock:
                    self.errors += 1
                self.stop.wait(1)
                continue
            took = time.monotonic() - t0
            with self.lock:
                self.latency.append(took)
                if newest is not None:
                    self.fresh.append(time.time() - newest.replace(tzinfo=UTC).timestamp())
            self.stop.wait(self.think_s)

    def take(self) -> tuple[list[float], list[float], int]:
        with self.lock:
            out = (self.fresh, self.latency, self.errors)
            self.fresh, self.latency, self.errors = [], [], 0
        return out


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def _delta_log(path: Path) -> tuple[int, int]:
    """(active data files, commits since the last checkpoint) of the Delta table at `path`."""
    from deltalake import DeltaTable

    log = path / "_delta_log"
    commits = sorted(int(p.stem) for p in log.glob("*.json") if p.stem.isdigit())
    checkpoints = [int(p.name.split(".")[0]) for p in log.glob("*.checkpoint*.parquet")]
    since = max(checkpoints, default=-1)
    try:
        files = len(DeltaTable(str(path)).file_uris())
    except Exception:  # noqa: BLE001 - being written: counted as unknown
        files = -1
    return files, sum(1 for c in commits if c > since)


def _tables(settings: Settings) -> dict[str, tuple[int, int]]:
    lake = Path(settings.lake.removeprefix("file://"))
    out = {}
    for log in sorted(lake.glob("*/*/_delta_log")):
        table = log.parent
        out[f"{table.parent.name}.{table.name}"] = _delta_log(table)
    return out


def _disk_mb(path: Path) -> float:
    total = 0
    for p in path.rglob("*"):
        try:
            if p.is_file() and not p.is_symlink():
                total += p.stat().st_size
        except OSError:
            pass
    return total / 2**20


def _processes(settings: Settings) -> dict[str, int | None]:
    return {"speed": control.service(settings).pid(),
            "stream": demo.stream_service(settings).pid(),
            "batch": demo.batch_service(settings).pid(),
            "dashboard": demo.dashboard_service(settings).pid(),
            "reconcile": demo.reconcile_service(settings).pid(),
            "kafka": kafka_service(settings).pid(),
            "trino": trino_service(settings).pid(),
            "exporter": exporter_service(settings).pid(),
            "prometheus": prometheus_service(settings).pid()}


class CpuShares:
    """Each process's share of one core since the previous call (its children included):
    where the box's CPU goes, the monitoring's own cost among it."""

    def __init__(self) -> None:
        self.last: dict[str, tuple[float, float]] = {}

    def take(self, processes: dict[str, int | None]) -> dict[str, float]:
        now, out = time.monotonic(), {}
        for name, pid in processes.items():
            used = cpu_seconds(pid) if pid else 0.0
            before = self.last.get(name)
            if before is not None and pid and now > before[0] and used >= before[1]:
                out[name] = (used - before[1]) / (now - before[0])
            self.last[name] = (now, used)
        return out


CPU = CpuShares()


def sample(settings: Settings, readers: Readers, sent_base: int) -> dict[str, float]:
    """One row of figures (flat names: lag.speed, rss_mb.trino, files.speed.bars_1m, ...)."""
    row: dict[str, float] = {}
    status = layer_status(settings)
    for layer in ("speed", "batch"):
        lag = status.get(layer, {}).get("kafka_lag")
        row[f"lag.{layer}"] = float("nan") if lag is None else float(lag)
    processes = _processes(settings)
    for name, pid in processes.items():
        row[f"rss_mb.{name}"] = rss_bytes(pid) / 2**20 if pid else float("nan")
    for name, share in CPU.take(processes).items():
        row[f"cpu.{name}"] = share
    fresh, latency, errors = readers.take()
    row["fresh_s.p50"] = _pct(fresh, 0.5)
    row["fresh_s.p99"] = _pct(fresh, 0.99)
    row["query_s.p50"] = _pct(latency, 0.5)
    row["query_errors"] = errors
    for table, (files, log) in _tables(settings).items():
        row[f"files.{table}"] = files
        row[f"log.{table}"] = log
    row["disk_mb"] = _disk_mb(settings.home)
    from infra import kafka

    row["messages"] = sum(kafka.end_offsets(settings, settings.topic).values()) - sent_base
    return row


def show(minute: float, row: dict[str, float]) -> None:
    def f(key: str, fmt: str = ",.0f") -> str:
        v = row.get(key, float("nan"))
        return "-" if v != v else format(v, fmt)  # NaN: not known

    rss = "  ".join(f"{k.split('.', 1)[1]} {f(k)}" for k in row if k.startswith("rss_mb."))
    cpu = "  ".join(f"{k.split('.', 1)[1]} {f(k, '.2f')}" for k in row if k.startswith("cpu."))
    files = [(k.split(".", 1)[1], row[k], row.get("log." + k.split(".", 1)[1], 0))
             for k in row if k.startswith("files.")]
    speed_files = sum(v for t, v, _ in files if t.startswith("speed.") and v >= 0)
    longest = max((lg for _, _, lg in files), default=0)
    say(f"t={minute:5.1f} min  messages {f('messages')}  lag speed {f('lag.speed')} batch "
        f"{f('lag.batch')}  fresh p50 {f('fresh_s.p50', '.1f')}s p99 {f('fresh_s.p99', '.1f')}s"
        f"  query p50 {f('query_s.p50', '.2f')}s ({f('query_errors')} errors)")
    say(f"           RSS MiB: {rss}")
    say(f"           CPU (cores): {cpu}")
    say(f"           files: speed {speed_files:,.0f}, all tables "
        f"{sum(v for _, v, _ in files if v >= 0):,.0f}; longest log since checkpoint "
        f"{longest:.0f} commits; disk {f('disk_mb')} MiB")


def judge(rows: list[tuple[float, dict[str, float]]], warmup_s: float, slack: float
          ) -> list[str]:
    """Series that grew: max over the second half > slack x max over the first + allowance."""
    judged = [r for t, r in rows if t >= warmup_s]
    if len(judged) < 4:
        return ["too few samples after the warm-up to judge"]
    half = len(judged) // 2
    first, second = judged[:half], judged[half:]
    grown = []
    for key in judged[-1]:
        kind = key.split(".")[0]
        if kind not in ALLOW:
            continue
        a = [r[key] for r in first if key in r and r[key] == r[key] and r[key] >= 0]
        b = [r[key] for r in second if key in r and r[key] == r[key] and r[key] >= 0]
        if not a or not b:
            continue
        if max(b) > slack * max(a) + ALLOW[kind]:
            grown.append(f"{key}: first half max {max(a):,.1f}, second half max {max(b):,.1f}")
    return grown


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.soak",
                                description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--rate", type=int, default=5000, help="live stream, msg/s (default 5000)")
    p.add_argument("--batch-every", type=int, default=180)
    p.add_argument("--readers", type=int, default=8)
    p.add_argument("--think", type=float, default=2.0,
                   help="seconds a reader pauses between its rounds (default 2; 0: back to "
                   "back, a saturation test on two cores: BENCHMARKS.md)")
    p.add_argument("--every", type=float, default=60.0, help="seconds between samples")
    p.add_argument("--warmup", type=float, default=300.0)
    p.add_argument("--slack", type=float, default=1.25)
    args = p.parse_args(argv)
    rows: list[tuple[float, dict[str, float]]] = []
    with private_stack(monitoring=True) as settings:
        from infra import kafka

        base = sum(kafka.end_offsets(settings, settings.topic).values())
        demo.start(settings, rate=args.rate, every_s=args.batch_every, say=say)
        readers = Readers(settings, args.readers, args.think)
        readers.start()
        t0 = time.monotonic()
        try:
            while (elapsed := time.monotonic() - t0) < args.minutes * 60:
                time.sleep(min(args.every, max(1.0, args.minutes * 60 - elapsed)))
                row = sample(settings, readers, base)
                rows.append((time.monotonic() - t0, row))
                show((time.monotonic() - t0) / 60, row)
        finally:
            readers.stop.set()
    grown = judge(rows, args.warmup, args.slack)
    last = rows[-1][1] if rows else {}
    per_m = (last.get("disk_mb", 0) / (last.get("messages", 0) / 1e6)
             if last.get("messages") else float("nan"))
    series: dict[str, list[float]] = defaultdict(list)
    for _, r in rows:
        for k, v in r.items():
            series[k].append(v)
    print(f"\nsoak: {args.minutes:.0f} min at {args.rate:,} msg/s, {args.readers} readers "
          f"pausing {args.think:g}s, batch every {args.batch_every}s; "
          f"{last.get('messages', 0):,.0f} messages sent")
    for key in ("lag.speed", "lag.batch", "fresh_s.p99", "query_s.p50",
                *sorted(k for k in series if k.startswith("cpu."))):
        vals = [v for v in series.get(key, []) if v == v]
        if vals:
            print(f"  {key}: min {min(vals):,.1f}  median {statistics.median(vals):,.1f}  "
                  f"max {max(vals):,.1f}  last {vals[-1]:,.1f}")
    print(f"  disk: {last.get('disk_mb', 0):,.0f} MiB, {per_m:,.0f} MiB per million messages")
    print("soak: " + ("PASS: every series flat or bounded" if not grown else
                      "FAIL: grew: " + "; ".join(grown)))
    return 0 if not grown else 1


if __name__ == "__main__":
    sys.exit(main())
