"""The detached speed job: start, SIGKILL mid-stream, start again — no duplicate, no loss.

Checked on lake.speed.bars_1m against the generator's labels: the merged trade count
and volume equal the oracle's exactly, and stay so after the job keeps running.
"""

from __future__ import annotations

import itertools
import os
import signal
import time
from decimal import Decimal
from pathlib import Path

import pytest

from infra.kafka import ensure_topic
from producers.market import Market, MarketConfig, Message
from producers.produce import ProduceReport, produce
from shared.config import Settings
from shared.tables import open_table
from speed_layer import control
from tests.oracle import accepted

pytestmark = pytest.mark.integration

CONFIG = MarketConfig(seed=29, jitter_ms=2000, late_fraction=0.02, duplicate_fraction=0.05,
                      malformed_fraction=0.05, trades_per_second=200)


def _totals(settings: Settings) -> tuple[int, Decimal]:
    table = open_table(settings.table_uri("speed", "bars_1m"))
    if table is None:  # not created yet
        return 0, Decimal(0)
    data = table.to_pyarrow_table(columns=["trade_count", "volume"])
    return (sum(data.column("trade_count").to_pylist()),
            sum(data.column("volume").to_pylist(), Decimal(0)))


def _expected(messages: list[Message]) -> tuple[int, Decimal]:
    trades = accepted(messages)
    return len(trades), sum((t.qty for t in trades), Decimal(0))


def _wait_for(settings: Settings, expected: tuple[int, Decimal], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _totals(settings)[0] < expected[0]:
        time.sleep(1)
    time.sleep(3)  # anything more would be a duplicate: give it the chance to show
    assert _totals(settings) == expected


def test_speed_job_survives_sigkill_without_duplicates_or_gaps(
    stack: Settings, unique: str, tmp_path: Path
) -> None:
    settings = stack.model_copy(update={"lake_uri": (tmp_path / "lake").as_uri(),
                                        "topic": f"it-speedjob-{unique}"})
    ensure_topic(settings, settings.topic, 2)
    messages = list(itertools.islice(Market(CONFIG).messages(), 30_000))
    try:
        produce(settings, ((m.key, m.value) for m in messages[:10_000]),
                report=ProduceReport(), progress=None)
        assert "fresh start" in control.start(settings)
        assert "already running" in control.start(settings)
        _wait_for(settings, _expected(messages[:10_000]), 180)

        # Kill it hard while it works through the next messages.
        produce(settings, ((m.key, m.value) for m in messages[10_000:20_000]),
                report=ProduceReport(), progress=None)
        time.sleep(1.5)
        pid = control.status(settings)["pid"]
        assert pid
        os.killpg(pid, signal.SIGKILL)
        os.waitpid(pid, 0)  # started by this process: reap it, as init would for the CLI
        assert not control.status(settings)["running"]

        produce(settings, ((m.key, m.value) for m in messages[20_000:]),
                report=ProduceReport(), progress=None)
        assert "resumed from" in control.start(settings)
        _wait_for(settings, _expected(messages), 240)
        assert control.status(settings)["running"]
    finally:
        control.stop(settings)
    assert not control.status(settings)["running"]
