"""Both layers live, the boundary moving, a reader querying all along; then reconcile.

The generator sends out-of-order, late, duplicate and malformed trades in phases. The
speed job (detached, as `concord speed start` runs it) takes each phase in; then a
batch run moves the boundary while a reader thread queries serving.bars_1m over and
over. Every answer the reader gets must hold each window exactly as the oracle has it
either before or after the phase (the batch layer is allowed to be one phase behind
on windows that late trades touched) and no window missing: nothing counted twice,
nothing lost. After the last batch run every serving view equals DuckDB's
computation over the produced messages, DECIMAL-exact; reconcile finds no unexplained
difference, explains a late trade the batch layer has not ingested yet, and flags a
speed row that no recount explains (exit 1).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake
from pyspark.sql import SparkSession

from batch_layer.run import BatchRun
from harness.stack import own_home
from infra.kafka import ensure_topic
from producers.market import Market, MarketConfig, Message
from producers.produce import ProduceReport, produce
from serving_layer.reconcile import Reconciler
from serving_layer.refresh import refresh
from serving_layer.trino import query
from shared.bookkeeping import keep_from
from shared.config import Settings
from shared.contract import Trade, parse_trade
from shared.tables import arrow_schema, speed_columns
from shared.views import BARS_1M, VIEWS
from speed_layer import control
from tests.duckdb_oracle import duckdb_rows
from tests.oracle import accepted

pytestmark = pytest.mark.e2e

CONFIG = MarketConfig(seed=37, jitter_ms=3000, late_fraction=0.03, duplicate_fraction=0.03,
                      malformed_fraction=0.03, trades_per_second=30)
PHASES = 3
PER_PHASE = 3000
CONCORD = str(Path(sys.executable).with_name("concord"))
Rows = dict[tuple[Any, ...], dict[str, Any]]


def _bars(trades: list[Trade]) -> Rows:
    return duckdb_rows(trades, ("exchange", "symbol"), 60, ["trade_count", "volume"])


def _speed_count(settings: Settings, since: datetime | None) -> int:
    """Trades counted in speed.bars_1m, in windows from `since` on (all when None)."""
    uri = settings.table_uri("speed", BARS_1M.name)
    if not DeltaTable.is_deltatable(uri):
        return 0
    data = DeltaTable(uri).to_pyarrow_table(columns=["window_start", "trade_count"])
    return sum(c for w, c in zip(data.column("window_start").to_pylist(),
                                 data.column("trade_count").to_pylist(), strict=True)
               if since is None or w >= since)


def _wait_for_speed(settings: Settings, job: BatchRun, trades: list[Trade],
                    timeout_s: float = 300) -> None:
    """Until the speed table holds every trade, in the windows maintenance never deleted
    rows of (from shared.bookkeeping.keep_from on)."""
    history = job.history().get(BARS_1M.name, [])
    since = keep_from([b for b, _ in history], settings.speed_retention_s)
    cut = None if since is None else int(since.timestamp() * 1000)
    expected = sum(1 for t in trades if cut is None or t.ts >= cut)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _speed_count(settings, since) < expected:
        time.sleep(1)
    assert _speed_count(settings, since) == expected


class Reader(threading.Thread):
    """Queries serving.bars_1m in a loop; checks each answer against the phase's oracles."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(daemon=True)
        self.settings = settings
        self.lock = threading.Lock()
        self.oracles: tuple[int, Rows, Rows] | None = None  # (phase, before, after)
        self.done = threading.Event()
        self.checked = 0
        self.failures: list[str] = []

    def expect(self, oracles: tuple[int, Rows, Rows] | None) -> None:
        with self.lock:
            self.oracles = oracles

    def run(self) -> None:
        while not self.done.is_set():
            with self.lock:
                oracles = self.oracles
            if oracles is None:
                time.sleep(0.1)
                continue
            rows = query(self.settings, "SELECT exchange, symbol, window_start, trade_count, "
                                        "volume FROM lake.serving.bars_1m")
            with self.lock:
                if self.oracles is not oracles:
                    continue  # the phase changed during the query: not comparable
            phase, before, after = oracles
            served = {(r[0], r[1], r[2].replace(tzinfo=UTC)):
                      {"trade_count": r[3], "volume": r[4]} for r in rows}
            missing = set(after) - set(served)
            extra = set(served) - set(after)
            wrong = [k for k, v in served.items()
                     if k in after and v != after[k] and v != before.get(k)]
            if missing or extra or wrong:
                self.failures.append(f"phase {phase}: {len(missing)} windows missing, "
                                     f"{len(extra)} unknown, {len(wrong)} wrong, e.g. "
                                     f"{sorted(missing | extra)[:2]} {wrong[:2]}")
            self.checked += 1
            time.sleep(0.5)


@pytest.mark.timeout(1800)
def test_layers_agree_with_duckdb_while_the_boundary_moves_and_reconcile_explains(
    stack: Settings, spark: SparkSession, unique: str, tmp_path: Path
) -> None:
    settings = own_home(stack, tmp_path, topic=f"e2e-lambda-{unique}", batch_lateness_s=20,
                        speed_retention_s=0)
    ensure_topic(settings, settings.topic, 2)
    messages = list(itertools.islice(Market(CONFIG).messages(), PHASES * PER_PHASE))
    job = BatchRun(settings, spark)
    reader = Reader(settings)
    boundaries: list[datetime] = []
    try:
        control.start(settings)
        produced: list[Message] = []
        before: Rows = {}
        for phase in range(PHASES):
            chunk = messages[phase * PER_PHASE:(phase + 1) * PER_PHASE]
            produce(settings, ((m.key, m.value) for m in chunk), report=ProduceReport(),
                    progress=None)
            produced += chunk
            _wait_for_speed(settings, job, accepted(produced))
            refresh(settings)
            after = _bars(accepted(produced))
            if phase == 0:
                reader.start()
            reader.expect((phase, before, after))
            checked = reader.checked
            result = job.run()
            time.sleep(2)  # the reader sees the published boundary a few times too
            reader.expect(None)
            assert result.views[0].boundary is not None
            boundaries.append(result.views[0].boundary)
            assert reader.checked > checked, "the reader never got an answer in this phase"
            before = after
        reader.done.set()
        reader.join(timeout=60)
        assert not reader.failures, reader.failures[:3]
        assert len(set(boundaries)) == PHASES, boundaries  # the boundary moved every phase
        assert job.current()["bars_1m"][0] == boundaries[-1]

        # Caught up: every serving view equals DuckDB over the produced messages.
        trades = accepted(produced)
        for view in VIEWS.values():
            names = [m.name for m in view.measures]
            columns = ", ".join([*view.keys, "window_start", *names])
            served = {(*r[:len(view.keys)], r[len(view.keys)].replace(tzinfo=UTC)):
                      dict(zip(names, r[len(view.keys) + 1:], strict=True))
                      for r in query(settings, f"SELECT {columns} FROM lake.serving.{view.name}")}
            assert served == duckdb_rows(trades, view.keys, view.window_seconds, names), view.name

        # Reconcile after catch-up: nothing unexplained, windows actually compared.
        report = Reconciler(settings).run(VIEWS.values())
        assert report.windows_compared > 0 and report.unexplained == 0, report.as_json()

        # Cause a difference: a late trade the speed layer takes in and batch has not yet.
        base = next(t for t in trades if t.ts < int(boundaries[-1].timestamp() * 1000) - 1
                    and t.ts >= int(boundaries[-2].timestamp() * 1000))
        late = (f'{{"exchange":"{base.exchange}","symbol":"{base.symbol}","trade_id":"late-1",'
                f'"price":"{base.price:f}","qty":"{base.qty:f}","side":"{base.side}",'
                f'"ts":{base.ts}}}')
        produce(settings, [(f"{base.exchange}:{base.symbol}".encode(), late.encode())],
                report=ProduceReport(), progress=None)
        late_trade = parse_trade(late.encode())
        assert isinstance(late_trade, Trade)
        _wait_for_speed(settings, job, [*trades, late_trade])
        env = {**os.environ, **settings.as_env()}
        done = subprocess.run([CONCORD, "reconcile", "--json"], env=env, capture_output=True,
                              text=True, timeout=600, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        out = json.loads(done.stdout)
        # bars_1m and symbol_bars_1m differ; flow_5m too when its 5-minute window is compared
        assert out["unexplained"] == 0 and 2 <= len(out["differences"]) <= len(VIEWS), out
        window = datetime.fromtimestamp(base.ts // 60_000 * 60, tz=UTC)
        bars = next(d for d in out["differences"] if d["view"] == "bars_1m")
        assert bars["key"] == {"exchange": base.exchange, "symbol": base.symbol}
        assert datetime.fromisoformat(bars["window_start"]) == window
        assert bars["speed"]["trade_count"] == bars["batch"]["trade_count"] + 1
        assert "not yet ingested by the batch layer" in " ".join(bars["causes"])

        # A speed row nothing explains (written behind the layers' back): exit 1.
        bogus: dict[str, Any] = {c: None for c, _ in speed_columns(BARS_1M)}
        bogus.update(exchange=base.exchange, symbol=base.symbol, window_start=window,
                     trade_count=1, volume=Decimal("1"), emitted_at=datetime.now(UTC))
        write_deltalake(settings.table_uri("speed", BARS_1M.name),
                        pa.Table.from_pylist([bogus], schema=arrow_schema(speed_columns(BARS_1M))),
                        mode="append")
        done = subprocess.run([CONCORD, "reconcile", "--view", "bars_1m"], env=env,
                              capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "1 unexplained" in done.stdout and "UNEXPLAINED" in done.stdout
    finally:
        reader.done.set()
        control.stop(settings)
