"""Batch ingest with real Kafka, Spark, Delta and Trino, checked by an independent oracle.

The oracle is the generator's own labels (trade, late, duplicate, malformed) and the
Kafka order reported by the broker on send: it never calls the contract code.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from batch_layer.driver_ingest import DRIVER_RUN, id_hash
from batch_layer.ingest import Ingest
from infra import kafka
from infra.kafka import ensure_topic
from producers.market import Market, MarketConfig, Message
from serving_layer.trino import query, register_table
from shared.config import Settings

pytestmark = pytest.mark.integration

CONFIG = MarketConfig(seed=21, jitter_ms=3000, late_fraction=0.03, duplicate_fraction=0.04,
                      malformed_fraction=0.05)


def _produce(settings: Settings, topic: str, messages: Iterable[Message]
             ) -> list[dict[str, Any]]:
    """Send messages; return them with the partition and offset Kafka gave each."""
    ensure_topic(settings, topic, 4)
    producer = kafka.producer(settings, linger_ms=5)
    sent = []
    for msg in messages:
        sent.append((msg, producer.send(topic, key=msg.key, value=msg.value)))
    producer.flush()
    out = []
    for msg, fut in sent:
        meta = fut.get(timeout=30)
        out.append({"msg": msg, "partition": meta.partition, "offset": meta.offset})
    producer.close()
    return out


def _oracle(sent: list[dict[str, Any]]) -> dict[str, Any]:
    """Expected outcome from the generator's labels, in Kafka order."""
    ordered = sorted(sent, key=lambda s: (s["partition"], s["offset"]))
    seen: set[tuple[str, str, str]] = set()
    accepted, duplicates, malformed = [], 0, 0
    per_partition: Counter[int] = Counter()
    for s in ordered:
        msg = s["msg"]
        per_partition[s["partition"]] += 1
        if msg.kind.startswith("malformed"):
            malformed += 1
        elif msg.trade.identity in seen:
            duplicates += 1
        else:
            seen.add(msg.trade.identity)
            accepted.append(msg.trade)
    return {"accepted": accepted, "duplicates": duplicates, "malformed": malformed,
            "per_partition": per_partition}


def _lake(stack: Settings, tmp_path: Path) -> Settings:
    """The session's engines with a lake folder of this test's own."""
    return stack.model_copy(update={"lake_uri": (tmp_path / "lake").as_uri()})


def _trino_view(settings: Settings, unique: str) -> tuple[str, str]:
    trades, rejects = f"it_trades_{unique}", f"it_rejects_{unique}"
    register_table(settings, "raw", trades, settings.table_uri("raw", "trades"))
    register_table(settings, "raw", rejects, settings.table_uri("raw", "rejects"))
    return f"lake.raw.{trades}", f"lake.raw.{rejects}"


def _check(settings: Settings, unique: str, expected: dict[str, Any]) -> None:
    trades, rejects = _trino_view(settings, unique)
    got = query(settings, f"SELECT exchange, symbol, trade_id, price, qty, side, ts FROM {trades}")
    want = [(t.exchange, t.symbol, t.trade_id, t.price, t.qty, t.side, t.ts)
            for t in expected["accepted"]]
    assert sorted(map(tuple, got)) == sorted(want)
    reasons = dict(query(settings, f"SELECT reason = 'duplicate', count(*) FROM {rejects} "
                                   "GROUP BY 1"))
    assert reasons.get(True, 0) == expected["duplicates"]
    assert reasons.get(False, 0) == expected["malformed"]
    # Every offset exactly once across both tables, per partition.
    rows = query(settings, f"SELECT kafka_partition, count(*), count(DISTINCT kafka_offset), "
                           f"min(kafka_offset), max(kafka_offset) FROM (SELECT kafka_partition, "
                           f"kafka_offset FROM {trades} UNION ALL SELECT kafka_partition, "
                           f"kafka_offset FROM {rejects}) GROUP BY 1")
    for partition, count, distinct, lo, hi in rows:
        assert count == distinct == expected["per_partition"][partition] == hi - lo + 1
        assert lo == 0
    volume = query(settings, f"SELECT sum(qty) FROM {trades}")[0][0]
    assert volume == sum((t.qty for t in expected["accepted"]), Decimal(0))


@pytest.mark.parametrize("driver_run", [0, DRIVER_RUN], ids=["spark", "driver"])
def test_ingest_lands_every_message_once_and_rerun_changes_nothing(
    stack: Settings, spark: Any, unique: str, tmp_path: Path, driver_run: int
) -> None:
    settings = _lake(stack, tmp_path)
    topic = f"it-ingest-{unique}"
    sent = _produce(settings, topic, itertools.islice(Market(CONFIG).messages(), 20_000))
    expected = _oracle(sent)
    assert expected["duplicates"] > 100 and expected["malformed"] > 100

    ingest = Ingest(settings, spark, topic=topic, max_records_per_partition=2_000,
                    driver_run=driver_run)
    runs = ingest.run()
    assert len(runs) > 1  # the backlog went in several runs
    assert all(r.balanced for r in runs)
    # With the driver allowed: the first run creates the tables with Spark, the driver
    # does the rest (and dedupes against what Spark wrote).
    assert [r.driver for r in runs] == [False] + [driver_run > 0] * (len(runs) - 1)
    assert sum(r.records for r in runs) == len(sent)
    _check(settings, unique, expected)

    # Running again: nothing new, nothing changed.
    assert ingest.run() == []
    _check(settings, unique, expected)

    # Later: re-sent old trades are duplicates across runs; new ones are accepted.
    resent = [s["msg"] for s in sent if s["msg"].kind == "trade"][:300]
    fresh = itertools.islice(Market(MarketConfig(seed=99)).messages(), 700)
    sent += _produce(settings, topic, [*resent, *fresh])
    expected = _oracle(sent)
    assert all(r.balanced for r in ingest.run())
    _check(settings, unique, expected)


def test_the_driver_hashes_identities_as_spark_does(spark: Any) -> None:
    from pyspark.sql import functions as F

    ids = [m.trade.identity for m in itertools.islice(Market(CONFIG).messages(), 3_000)
           if m.trade is not None]
    ids += [("kraken", "ÉTH-€", "ü" * 40), ("a" * 33, "", "x" * 100)]
    got = (spark.createDataFrame(ids, "exchange string, symbol string, trade_id string")
           .select("exchange", "symbol", "trade_id",
                   F.xxhash64("exchange", "symbol", "trade_id").alias("h")).collect())
    assert len(got) == len(ids)
    assert all(id_hash(r["exchange"], r["symbol"], r["trade_id"]) == r["h"] for r in got)


def test_ingest_killed_mid_run_then_rerun_equals_undisturbed(
    stack: Settings, unique: str, tmp_path: Path
) -> None:
    settings = _lake(stack, tmp_path)
    topic = f"it-kill-{unique}"
    sent = _produce(settings, topic, itertools.islice(Market(CONFIG).messages(), 20_000))
    expected = _oracle(sent)
    env = {
        **os.environ,
        "CONCORD_HOME": str(settings.home),
        "CONCORD_LAKE_URI": settings.lake,
        "CONCORD_KAFKA_PORT": str(settings.kafka_port),
        "CONCORD_TRINO_PORT": str(settings.trino_port),
        "CONCORD_TRINO_HTTPS_PORT": str(settings.trino_https_port),
    }
    cmd = [str(Path(sys.executable).with_name("concord")), "batch", "ingest", "--topic", topic,
           "--max-per-partition", "1500"]
    ledger = tmp_path / "lake" / "meta" / "ingest_runs" / "_delta_log"
    # Kill at several points: as soon as a run is planned, and later in the backlog.
    for wait_commits in (1, 4, 7):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if ledger.is_dir() and len(list(ledger.glob("*.json"))) >= wait_commits:
                break
            time.sleep(0.05)
        time.sleep(0.5)  # well inside the run that follows the ledger commit
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    _check(settings, unique, expected)
