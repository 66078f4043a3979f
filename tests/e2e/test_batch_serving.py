"""The analyst's path through the CLI: produce, batch run, serve refresh, query.

The served bars below the boundary must equal the oracle over the generator's own
labels (malformed and duplicate messages excluded, first occurrence wins).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from infra.kafka import ensure_topic
from producers.market import Market, MarketConfig
from shared.config import Settings
from tests.oracle import accepted, view_rows

pytestmark = pytest.mark.e2e

CONCORD = str(Path(sys.executable).with_name("concord"))


def test_produce_batch_run_serve_query(stack: Settings, unique: str, tmp_path: Path) -> None:
    topic = f"e2e-batch-{unique}"
    ensure_topic(stack, topic, 2)
    env = {**os.environ, "CONCORD_HOME": str(stack.home),
           "CONCORD_LAKE_URI": (tmp_path / "lake").as_uri(), "CONCORD_TOPIC": topic,
           "CONCORD_KAFKA_PORT": str(stack.kafka_port),
           "CONCORD_TRINO_PORT": str(stack.trino_port),
           "CONCORD_TRINO_HTTPS_PORT": str(stack.trino_https_port), "CONCORD_BATCH_LATENESS_S": "0"}

    def concord(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([CONCORD, *args], env=env, capture_output=True, text=True,
                              timeout=600, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    knobs = ["--seed", "5", "--jitter-ms", "2000", "--duplicate-fraction", "0.05",
             "--malformed-fraction", "0.05", "--late-fraction", "0.02"]
    concord("produce", "--count", "6000", *knobs)
    run = concord("batch", "run")
    assert "boundary none -> " in run.stdout, run.stdout
    concord("serve", "refresh")
    out = concord("query", "SELECT * FROM lake.serving.bars_1m", "--format", "json")
    served = {(r["exchange"], r["symbol"], datetime.fromisoformat(r["window_start"])
               .astimezone(UTC)): r for r in json.loads(out.stdout)}

    config = MarketConfig(seed=5, jitter_ms=2000, duplicate_fraction=0.05,
                          malformed_fraction=0.05, late_fraction=0.02)
    trades = accepted(itertools.islice(Market(config).messages(), 6000))
    expected = view_rows(trades, ("exchange", "symbol"), 60,
                         ["open", "close", "volume", "trade_count"], ["vwap"])
    boundary = max(t.ts for t in trades) // 60_000 * 60_000
    below = {k: v for k, v in expected.items() if k[2].timestamp() * 1000 < boundary}
    assert below and set(served) == set(below)
    for key, row in below.items():
        got = served[key]
        assert {k: Decimal(str(got[k])) if k != "trade_count" else got[k] for k in row} == row

    # The operator's view after the run: nothing left to ingest, the run's reject rate as
    # the generator made it, every view's boundary published; the speed job not running.
    status = subprocess.run([CONCORD, "status", "--json"], env=env, capture_output=True,
                            text=True, timeout=120, check=False)
    layers = json.loads(status.stdout)["layers"]
    assert layers["batch"]["kafka_lag"] == 0 and layers["batch"]["last_ingest_run"] == 1
    assert layers["batch"]["last_run_records"] == 6000
    assert layers["batch"]["last_run_reject_rate"] == round(1 - len(trades) / 6000, 4)
    assert layers["speed"]["running"] is False and layers["speed"]["kafka_lag"] == 6000
    published = layers["serving"]["views"]
    assert datetime.fromisoformat(published["bars_1m"]["boundary"]).timestamp() * 1000 \
        == boundary
    assert all(v["boundary"] for v in published.values())
    text = subprocess.run([CONCORD, "status"], env=env, capture_output=True, text=True,
                          timeout=120, check=False).stdout
    assert "batch:   last ingest run 1" in text and "speed:   NOT RUNNING" in text
