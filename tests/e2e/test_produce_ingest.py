"""`concord produce` from exchange-format files and the generator, then ingest: the
user's path, through the installed CLI, on the test session's engines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from batch_layer.ingest import Ingest
from serving_layer.trino import query, register_table
from shared.config import Settings

pytestmark = pytest.mark.e2e

CONCORD = str(Path(sys.executable).with_name("concord"))

BINANCE_LINES = [
    '{"e":"trade","E":1763800000125,"s":"BTCUSDT","t":5123456789,"p":"64250.12000000",'
    '"q":"0.01500000","T":1763800000123,"m":true,"M":true}',
    '{"stream":"ethusdt@trade","data":{"e":"trade","E":1763800000300,"s":"ETHUSDT",'
    '"t":998877,"p":"3150.50","q":"1.25","T":1763800000299,"m":false,"M":true}}',
    '{"e":"aggTrade","s":"BTCUSDT"}',  # not a trade event: sent verbatim, rejected by ingest
]
COINBASE_LINES = [
    '{"type":"match","trade_id":862144551,"maker_order_id":"a","taker_order_id":"b",'
    '"side":"sell","size":"0.00513000","price":"64250.01","product_id":"BTC-USD",'
    '"sequence":93312455122,"time":"2025-11-22T08:26:40.123456Z"}',
]


def _env(settings: Settings) -> dict[str, str]:
    return {**os.environ, "CONCORD_HOME": str(settings.home), "CONCORD_LAKE_URI": settings.lake,
            "CONCORD_KAFKA_PORT": str(settings.kafka_port),
            "CONCORD_TRINO_PORT": str(settings.trino_port),
            "CONCORD_TRINO_HTTPS_PORT": str(settings.trino_https_port)}


def _produce(settings: Settings, *args: str, stdin: str | None = None
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CONCORD, "produce", *args], env=_env(settings), input=stdin,
                          capture_output=True, text=True, timeout=300, check=False)


def test_exchange_files_and_generator_through_produce_and_ingest(
    stack: Settings, spark: Any, unique: str, tmp_path: Path
) -> None:
    settings = stack.model_copy(update={"lake_uri": (tmp_path / "lake").as_uri()})
    topic = f"e2e-produce-{unique}"
    from infra.kafka import ensure_topic

    ensure_topic(settings, topic, 4)
    binance = tmp_path / "binance.jsonl"
    binance.write_text("\n".join(BINANCE_LINES) + "\n")
    done = _produce(settings, "--file", str(binance), "--format", "binance", "--topic", topic)
    assert done.returncode == 0, done.stderr
    assert "3 sent, 3 acknowledged, 0 failed" in done.stdout
    assert "1 lines not in binance format" in done.stdout
    done = _produce(settings, "--file", "-", "--format", "coinbase", "--topic", topic,
                    stdin="\n".join(COINBASE_LINES))
    assert done.returncode == 0 and "1 sent, 1 acknowledged" in done.stdout
    done = _produce(settings, "--count", "5000", "--seed", "3", "--malformed-fraction", "0.1",
                    "--topic", topic)
    assert done.returncode == 0 and "5,000 sent, 5,000 acknowledged" in done.stdout, done.stdout

    runs = Ingest(settings, spark, topic=topic).run()
    consumed = sum(r.records for r in runs)
    assert consumed == 3 + 1 + 5000 and all(r.balanced for r in runs)

    trades = f"it_e2e_trades_{unique}"
    register_table(settings, "raw", trades, settings.table_uri("raw", "trades"))
    got = query(settings, f"SELECT exchange, symbol, trade_id, price, qty, side, ts "
                          f"FROM lake.raw.{trades} WHERE trade_id IN "
                          "('5123456789', '998877', '862144551') ORDER BY trade_id")
    assert [tuple(r) for r in got] == [
        ("binance", "BTC-USDT", "5123456789", Decimal("64250.12"), Decimal("0.015"), "sell",
         1763800000123),
        ("coinbase", "BTC-USD", "862144551", Decimal("64250.01"), Decimal("0.00513"), "buy",
         1763800000123),
        ("binance", "ETH-USDT", "998877", Decimal("3150.50"), Decimal("1.25"), "buy",
         1763800000299),
    ]
    # The unmapped line is kept, verbatim, with its reason.
    rejects = f"it_e2e_rejects_{unique}"
    register_table(settings, "raw", rejects, settings.table_uri("raw", "rejects"))
    rows = query(settings, f"SELECT reason FROM lake.raw.{rejects} "
                           f"WHERE from_utf8(value) = '{BINANCE_LINES[2]}'")
    assert rows == [["missing_field"]]
    assert json.loads(BINANCE_LINES[2])["e"] == "aggTrade"
