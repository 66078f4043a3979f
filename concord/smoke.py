"""`concord smoke`: one pass through the stack, checked by an independent oracle.

Produces generated trade messages to a fresh topic, reads them back with Spark
(Kafka batch source), writes a Delta table `lake.meta.smoke`, and has Trino
aggregate it. The oracle is plain Python `decimal` over the produced messages.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from decimal import Decimal
from typing import Any

from infra import kafka
from infra.engines import spark_session
from serving_layer.trino import ident, query, register_table
from shared.config import Settings


def sample_trades(n: int, seed: int) -> list[dict[str, Any]]:
    """Deterministic trade-shaped messages on exchange `smoke`: made here, not by the market
    generator, so the smoke checks the stack alone (its oracle is plain `decimal`)."""
    rng = random.Random(seed)  # noqa: S311 - sample data, not security
    out = []
    symbols = ["BTC-USDT", "ETH-USDT", "SOL-USDT"]
    for i in range(n):
        price = Decimal(rng.randint(1_000_000, 7_000_000_000_000)) / Decimal(10**8)
        qty = Decimal(rng.randint(1, 500_000_000)) / Decimal(10**8)
        out.append({
            "exchange": "smoke", "symbol": rng.choice(symbols), "trade_id": str(i),
            "price": f"{price:.8f}", "qty": f"{qty:.8f}",
            "side": rng.choice(["buy", "sell"]), "ts": 1_763_800_000_000 + i,
        })
    return out


def produce(settings: Settings, topic: str, messages: list[dict[str, Any]]) -> None:
    producer = kafka.producer(settings, linger_ms=20)
    try:
        for m in messages:
            producer.send(topic, key=f"{m['exchange']}:{m['symbol']}".encode(),
                          value=json.dumps(m).encode())
        producer.flush()
    finally:
        producer.close()


def run_smoke(settings: Settings, messages: int = 10_000) -> bool:
    from pyspark.sql import functions as F

    t0 = time.monotonic()
    topic = f"smoke-{uuid.uuid4().hex[:8]}"
    kafka.ensure_topic(settings, topic, settings.topic_partitions)
    trades = sample_trades(messages, seed=7)
    produce(settings, topic, trades)
    print(f"smoke: produced {messages} messages to {topic} ({time.monotonic() - t0:.1f}s)")

    spark = spark_session(settings, "concord-smoke")
    raw = (
        spark.read.format("kafka")
        .options(**kafka.spark_options(settings))
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .option("endingOffsets", "latest")
        .load()
    )
    schema = "exchange STRING, symbol STRING, trade_id STRING, price STRING, qty STRING, " \
             "side STRING, ts BIGINT"
    parsed = raw.select(F.from_json(F.col("value").cast("string"), schema).alias("t")).select(
        "t.exchange", "t.symbol", "t.trade_id",
        F.col("t.price").cast("decimal(18,8)").alias("price"),
        F.col("t.qty").cast("decimal(18,8)").alias("qty"),
        "t.side", "t.ts",
    )
    parsed.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(
        settings.table_uri("meta", "smoke")
    )
    print(f"smoke: Spark wrote lake.meta.smoke ({time.monotonic() - t0:.1f}s)")

    register_table(settings, "meta", "smoke")
    table = f"{ident(settings.catalog)}.meta.smoke"
    sql = f"SELECT count(*), sum(qty), sum(CAST(price * qty AS DECIMAL(38,16))) FROM {table}"  # noqa: S608 - validated identifier
    rows = query(settings, sql)
    count, volume, notional = rows[0]
    want_volume = sum((Decimal(t["qty"]) for t in trades), Decimal(0))
    want_notional = sum((Decimal(t["price"]) * Decimal(t["qty"]) for t in trades), Decimal(0))
    ok: bool = count == messages and volume == want_volume and notional == want_notional
    print(f"smoke: Trino sees {count} trades, volume {volume}, notional {notional}")
    print(f"smoke: oracle     {messages} trades, volume {want_volume}, notional {want_notional}")
    print(f"smoke: {'OK' if ok else 'MISMATCH'} in {time.monotonic() - t0:.1f}s")
    return ok
