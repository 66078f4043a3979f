"""`batch run` with real Kafka, Spark and Delta: ingest, recompute what was touched, publish."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from batch_layer.run import BatchRun
from infra.kafka import ensure_topic
from producers.market import Market, MarketConfig, Message
from producers.produce import ProduceReport, produce
from shared.config import Settings
from shared.views import BARS_1M, FLOW_5M, View
from tests.oracle import accepted, view_rows

pytestmark = pytest.mark.integration

CONFIG = MarketConfig(seed=23, jitter_ms=3000, late_fraction=0.05, duplicate_fraction=0.05,
                      malformed_fraction=0.05, trades_per_second=50)


def _batch(spark: SparkSession, settings: Settings, view: View) -> dict[tuple[Any, ...], Any]:
    measures = [m.name for m in view.measures]
    rows = spark.read.format("delta").load(settings.table_uri("batch", view.name)).collect()
    return {(*(r[k] for k in view.keys), r["window_start"].replace(tzinfo=UTC)):
            {m: r[m] for m in measures} for r in rows}


def _expected(messages: list[Message], view: View,
              below: datetime | None = None) -> dict[tuple[Any, ...], Any]:
    """The oracle's rows of `view`, only windows before `below` when given."""
    rows = view_rows(accepted(messages), view.keys, view.window_seconds,
                     [m.name for m in view.measures])
    return {k: v for k, v in rows.items() if below is None or k[-1] < below}


def test_batch_run_recomputes_touched_windows_and_advances_the_boundary(
    spark: SparkSession, stack: Settings, unique: str, tmp_path: Path
) -> None:
    settings = stack.model_copy(update={"lake_uri": (tmp_path / "lake").as_uri()})
    topic = f"it-batch-run-{unique}"
    ensure_topic(settings, topic, 2)
    messages = list(itertools.islice(Market(CONFIG).messages(), 16_000))
    views = [BARS_1M, FLOW_5M]
    job = BatchRun(settings, spark, topic=topic, lateness_s=60, views=views)

    produce(settings, ((m.key, m.value) for m in messages[:8000]), topic=topic,
            report=ProduceReport(), progress=None)
    first = job.run()
    bounds = {r.view: r.boundary for r in first.views}
    # The batch view holds every window below its boundary, exactly, and none after it.
    for view in views:
        assert _batch(spark, settings, view) == _expected(messages[:8000], view,
                                                          bounds[view.name])
    newest = max(m.trade.ts for m in messages[:8000] if m.trade is not None)
    assert bounds["bars_1m"] is not None
    assert int(bounds["bars_1m"].timestamp() * 1000) == (newest - 60_000) // 60_000 * 60_000

    # More trades, late ones among them: only their windows are recomputed.
    produce(settings, ((m.key, m.value) for m in messages[8000:]), topic=topic,
            report=ProduceReport(), progress=None)
    second = job.run()
    again = {r.view: r for r in second.views}
    for view in views:
        assert _batch(spark, settings, view) == _expected(messages, view,
                                                          again[view.name].boundary)
    assert again["bars_1m"].windows < len(_expected(messages, BARS_1M))
    assert again["bars_1m"].previous == bounds["bars_1m"]
    assert again["bars_1m"].boundary is not None
    assert again["bars_1m"].boundary >= bounds["bars_1m"]
    assert job.current()["bars_1m"][0] == again["bars_1m"].boundary

    # Nothing new: nothing recomputed, boundary unchanged.
    idle = job.run()
    assert not idle.ingest and all(not r.ranges for r in idle.views)
    assert job.current()["bars_1m"][0] == again["bars_1m"].boundary

