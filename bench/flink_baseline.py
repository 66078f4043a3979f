"""The speed job's baseline: the same work as plain Flink SQL, no Python, no lake.

What issue 12 measures the speed job against, on the same topic and settings: Kafka
`json` format, the contract's shape checks in SQL, the same dedupe (ROW_NUMBER over
(exchange, symbol, trade_id), RocksDB, incremental checkpoints, state TTL = the dedupe
horizon), the same 1 s processing-time partials of `bars_1m`, a blackhole sink. It
commits its source offsets to its Kafka group on each checkpoint, so its progress is
read the way the speed job's is (bench.speed: group lag).

    CONCORD_... .venv/bin/python -m bench.flink_baseline --group G [--topic T]

(bench.speed starts it as a supervised process and stops it.)
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from types import FrameType

from infra.engines import flink_table_env
from infra.kafka import flink_properties
from shared.config import Settings, load_settings
from shared.contract import MAX_TS_MS
from shared.tables import speed_columns
from shared.views import BARS_1M
from speed_layer.flink_io import kafka_source_ddl
from speed_layer.flink_views import partials_sql
from speed_layer.job import configure_state
from speed_layer.pipeline import each_emit, flink_columns

DECIMAL = "DECIMAL(18,8)"


def statements(settings: Settings, topic: str, group: str) -> list[str]:
    """DDL and the INSERT of the baseline job."""
    source = kafka_source_ddl(
        "trades_json",
        "exchange STRING, symbol STRING, trade_id STRING, price STRING, qty STRING, "
        "side STRING, ts BIGINT, proc AS PROCTIME()",
        topic=topic, connection=flink_properties(settings), group_id=group,
        value_format="json", resume_group=True, extra={"json.ignore-parse-errors": "true"})
    checked = (
        "CREATE TEMPORARY VIEW trades_checked AS SELECT exchange, symbol, trade_id, "
        f"TRY_CAST(price AS {DECIMAL}) AS price, TRY_CAST(qty AS {DECIMAL}) AS qty, side, ts, "
        "proc FROM trades_json WHERE REGEXP(exchange, '^[a-z0-9_]{1,32}$') "
        "AND REGEXP(symbol, '^[A-Z0-9]{1,16}-[A-Z0-9]{1,16}$') "
        "AND CHAR_LENGTH(trade_id) BETWEEN 1 AND 64 AND side IN ('buy', 'sell') "
        f"AND ts BETWEEN 0 AND {MAX_TS_MS} "
        f"AND TRY_CAST(price AS {DECIMAL}) > 0 AND TRY_CAST(qty AS {DECIMAL}) > 0")
    deduped = (
        "CREATE TEMPORARY VIEW trades_deduped AS "
        "SELECT exchange, symbol, trade_id, price, qty, side, ts, proc FROM ("
        "  SELECT *, ROW_NUMBER() OVER (PARTITION BY exchange, symbol, trade_id "
        "  ORDER BY proc) AS rn FROM trades_checked"
        ") WHERE rn = 1")
    sink = (f"CREATE TEMPORARY TABLE bars_sink ({flink_columns(speed_columns(BARS_1M))}) "
            "WITH ('connector' = 'blackhole')")
    each_second = each_emit(settings, "trades_deduped")
    select = partials_sql(BARS_1M, each_second, extra_group_by=("window_start", "window_end"),
                          extra_select=("window_end AS emitted",))
    names = ", ".join(f"`{n}`" for n, _ in BARS_1M.partial_columns())
    insert = (f"INSERT INTO bars_sink SELECT {names}, CAST(emitted AS TIMESTAMP(3)) "
              f"FROM ({select})")
    return [source, checked, deduped, sink, insert]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--group", required=True, help="Kafka group its offsets go to")
    parser.add_argument("--topic", help="default: CONCORD_TOPIC")
    args = parser.parse_args()
    settings = load_settings()
    t_env = flink_table_env(settings)
    conf = t_env.get_config()
    # The speed job's state and checkpoint settings (speed_layer.job), so only the
    # work differs.
    configure_state(conf, settings)
    conf.set("execution.checkpointing.dir", (settings.data_dir / "bench-baseline" /
                                             args.group).resolve().as_uri())
    conf.set("table.exec.state.ttl", f"{settings.speed_dedupe_horizon_s} s")
    conf.set("pipeline.object-reuse", "true")
    *ddl, insert = statements(settings, args.topic or settings.topic, args.group)
    for statement in ddl:
        t_env.execute_sql(statement)
    client = t_env.execute_sql(insert).get_job_client()
    assert client is not None
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    print(f"baseline job {client.get_job_id()} running", flush=True)
    while not stopping:
        if str(client.get_job_status().result()) in ("FAILED", "CANCELED", "FINISHED"):
            print("baseline job ended", file=sys.stderr, flush=True)
            return 1
        time.sleep(0.5)
    client.cancel().result()
    return 0


if __name__ == "__main__":
    sys.exit(main())
