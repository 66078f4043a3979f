"""The speed layer's pipeline with real Kafka, Flink, Delta and Trino, checked by the oracle.

Generated trades with out-of-order, late, duplicate and malformed messages go through
the Flink job (contract, dedupe, partials every second, exactly-once Kafka sinks) and
the Delta committers; Trino merges the partials with the compiled merge, and every
view must equal the plain-Python oracle over the generator's own labels.
"""

from __future__ import annotations

import itertools
import time
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest

from infra.engines import flink_table_env
from infra.kafka import ensure_topic
from producers.market import Market, MarketConfig
from producers.produce import ProduceReport, produce
from serving_layer.trino import query, register_table
from serving_layer.trino_views import merge_sql, served_sql
from shared.config import Settings
from shared.contract import Trade
from shared.partials import partials_topic, rejects_topic
from shared.tables import open_table
from shared.views import VIEWS
from speed_layer.pipeline import build, committers
from tests.oracle import view_rows

pytestmark = pytest.mark.integration

CONFIG = MarketConfig(seed=17, jitter_ms=5000, late_fraction=0.03, duplicate_fraction=0.05,
                      malformed_fraction=0.05, trades_per_second=100)


def _sum(uri: str, column: str) -> int:
    found = open_table(uri)
    if found is None:  # not created yet
        return 0
    table = found.to_pyarrow_table(columns=[column])
    return sum(v for v in table.column(column).to_pylist() if v is not None)


def test_speed_partials_merge_to_the_oracle(stack: Settings, unique: str,
                                            tmp_path: Path) -> None:
    settings = stack.model_copy(update={"lake_uri": (tmp_path / "lake").as_uri()})
    topic = f"it-speed-{unique}"
    views = list(VIEWS.values())
    ensure_topic(settings, topic, 2)
    ensure_topic(settings, partials_topic(settings, topic), 1)
    ensure_topic(settings, rejects_topic(settings, topic), 1)

    messages = list(itertools.islice(Market(CONFIG).messages(), 20_000))
    produce(settings, ((m.key, m.value) for m in messages), topic=topic,
            report=ProduceReport(), progress=None)
    trades: dict[tuple[str, str, str], Trade] = {}
    malformed = 0
    for m in messages:
        if m.trade is None:
            malformed += 1
        else:
            trades.setdefault(m.trade.identity, m.trade)

    t_env = flink_table_env(settings)
    job = build(t_env, settings, views, topic=topic, group_id=f"it-{unique}").execute()
    client = job.get_job_client()
    assert client is not None
    sinks = committers(settings, views, topic=topic, app_id=f"it-{unique}")
    bars_uri = settings.table_uri("speed", "bars_1m")
    rejects_uri = settings.table_uri("speed", "contract_rejects")
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            for sink in sinks:
                sink.poll_once(timeout_ms=200)
            if (_sum(bars_uri, "trade_count") >= len(trades)
                    and _sum(rejects_uri, "messages") >= malformed):
                break
    finally:
        client.cancel().result()
        for sink in sinks:
            sink.close()
    # A few more seconds would add nothing: every trade is counted once, no more.
    assert _sum(bars_uri, "trade_count") == len(trades)
    assert _sum(rejects_uri, "messages") == malformed

    for view in views:
        table = f"it_speed_{view.name}_{unique}"
        register_table(settings, "speed", table, settings.table_uri("speed", view.name))
        rows = query(settings, served_sql(view, f"({merge_sql(view, f'lake.speed.{table}')})"))
        names = [n for n, _ in view.merged_columns()]
        measures = [m.name for m in view.measures] + [d.name for d in view.derived]
        got: dict[tuple[Any, ...], dict[str, Any]] = {}
        for values in rows:
            row = dict(zip(names, values, strict=True))
            key = (*(row[k] for k in view.keys), row["window_start"].astimezone(UTC))
            got[key] = {m: row[m] for m in measures}
        expected = view_rows(trades.values(), view.keys, view.window_seconds,
                             [m.name for m in view.measures], [d.name for d in view.derived])
        assert got == expected, view.name
