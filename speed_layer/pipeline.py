"""The speed layer's Flink pipeline: trades -> contract -> dedupe -> partial rows.

    Kafka `trades` (raw bytes)
      -> the contract (speed_layer.contract_udf); rejected messages are counted per
         reason and emit slice into `lake.speed.contract_rejects`, never fatal
      -> dedupe on (exchange, symbol, trade_id), first arrival wins, state kept for
         the dedupe horizon (`table.exec.state.ttl`, CONCORD_SPEED_DEDUPE_HORIZON_S)
      -> every slice of processing time (a TUMBLE on PROCTIME, CONCORD_SPEED_EMIT_MS,
         250 ms by default), one partial row per
         (keys, event-time window) of the views' common grain (shared.views.grain: all
         their keys, the gcd of their windows, every measure once) seen in that slice:
         the trades are aggregated once for all views (speed_layer.flink_views)
      -> one Kafka topic, written in Kafka transactions committed on Flink checkpoints
         (exactly once); one speed_layer.delta_committer per view reads it, regroups the
         grain's rows into the view's (shared.views.regroup: partial rows merge) and
         appends them to `lake.speed.<view>` with idempotent Delta commits.

Durability: a partial row is durable in Kafka when the checkpoint after its second
completes, and in Delta when the committer's commit holding it lands. A restart from
the latest checkpoint replays from the checkpointed Kafka offsets; rows of seconds
after that checkpoint were never committed to Kafka, so nothing is counted twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from infra.kafka import flink_properties
from shared.config import Settings
from shared.partials import json_decoder, partials_topic, rejects_topic
from shared.tables import SPEED_REJECTS, arrow_schema, speed_columns
from shared.views import View, grain, regroup
from speed_layer import contract_udf
from speed_layer.delta_committer import DeltaCommitter, Transform
from speed_layer.flink_io import kafka_exactly_once_sink_ddl, kafka_source_ddl
from speed_layer.flink_views import flink_type, partials_sql

if TYPE_CHECKING:
    from pyflink.table import StatementSet, TableEnvironment


def flink_columns(columns: list[tuple[str, str]]) -> str:
    return ", ".join(f"`{name}` {flink_type(sql)}" for name, sql in columns)


def build(t_env: TableEnvironment, settings: Settings, views: list[View], *,
          topic: str | None = None, group_id: str = "concord-speed",
          dedupe_horizon_s: int | None = None) -> StatementSet:
    """Declare the pipeline in `t_env`; returns the statement set to execute."""
    source_topic = topic or settings.topic
    kafka = flink_properties(settings)
    contract_udf.register(t_env)
    horizon = settings.speed_dedupe_horizon_s if dedupe_horizon_s is None else dedupe_horizon_s
    t_env.get_config().set("table.exec.state.ttl", f"{horizon} s")
    # The views share the parse and the dedupe: plan those once (one dedupe state),
    # not once per sink with each sink's unused columns pruned.
    t_env.get_config().set("table.optimizer.reuse-optimize-block-with-digest-enabled", "true")
    # SQL operators never hold on to a record they emitted: chained operators can hand
    # records over without a copy each.
    t_env.get_config().set("pipeline.object-reuse", "true")
    t_env.execute_sql(kafka_source_ddl(
        "trades_raw", "`value` BYTES, proc AS PROCTIME()",
        topic=source_topic, connection=kafka, group_id=group_id,
        value_format="raw", resume_group=True,
    ))
    t_env.execute_sql("CREATE TEMPORARY VIEW trades_parsed AS "
                      + contract_udf.parsed_sql("trades_raw", keep=("proc",)))
    t_env.execute_sql(
        "CREATE TEMPORARY VIEW trades_deduped AS "
        "SELECT exchange, symbol, trade_id, price, qty, side, ts, proc FROM ("
        "  SELECT *, ROW_NUMBER() OVER (PARTITION BY exchange, symbol, trade_id "
        "  ORDER BY proc) AS rn FROM trades_parsed WHERE ok"
        ") WHERE rn = 1"
    )
    statements = t_env.create_statement_set()
    base = grain(views)
    t_env.execute_sql(kafka_exactly_once_sink_ddl(
        "speed_partials", flink_columns(speed_columns(base)),
        topic=partials_topic(settings, source_topic), connection=kafka,
        transactional_id_prefix=f"{group_id}-partials",
        extra={"json.timestamp-format.standard": "ISO-8601"},
    ))
    # The TVF's own window_start/window_end are the processing-time slice.
    select = partials_sql(base, each_emit(settings, "trades_deduped"),
                          extra_group_by=("window_start", "window_end"),
                          extra_select=("window_end AS emitted",))
    names = ", ".join(f"`{n}`" for n, _ in base.partial_columns())
    statements.add_insert_sql(
        f"INSERT INTO speed_partials SELECT {names}, CAST(emitted AS TIMESTAMP(3)) "
        f"FROM ({select})"
    )
    t_env.execute_sql(kafka_exactly_once_sink_ddl(
        "speed_rejects", flink_columns(SPEED_REJECTS),
        topic=rejects_topic(settings, source_topic), connection=kafka,
        transactional_id_prefix=f"{group_id}-rejects",
        extra={"json.timestamp-format.standard": "ISO-8601"},
    ))
    every_second = each_emit(settings, "trades_parsed")
    statements.add_insert_sql(
        "INSERT INTO speed_rejects SELECT CAST(window_end AS TIMESTAMP(3)), reason, "
        f"COUNT(*) FROM {every_second} WHERE NOT ok GROUP BY window_start, window_end, reason"
    )
    return statements


def each_emit(settings: Settings, table: str) -> str:
    """`table`'s rows in processing-time slices of CONCORD_SPEED_EMIT_MS: each slice's
    partial rows are emitted when it ends."""
    ms = settings.speed_emit_ms
    return (f"TABLE(TUMBLE(TABLE {table}, DESCRIPTOR(proc), "
            f"INTERVAL '{ms // 1000}.{ms % 1000:03d}' SECOND(2, 3)))")


def committers(settings: Settings, views: list[View], *, topic: str | None = None,
               app_id: str = "concord-speed") -> list[DeltaCommitter]:
    """One committer per view (the grain's partial rows, regrouped -> `lake.speed.<view>`),
    and one for the rejects counts (-> `lake.speed.contract_rejects`)."""
    decode = json_decoder(arrow_schema(speed_columns(grain(views))))

    def regrouped(view: View) -> Transform:
        return lambda rows: regroup(view, rows, by=("emitted_at",))

    out = [
        DeltaCommitter(
            settings,
            topic=partials_topic(settings, topic),
            table_uri=settings.table_uri("speed", view.name),
            schema=arrow_schema(speed_columns(view)),
            # The txn ids name the source (the offsets are of the partials topic).
            app_id=f"{app_id}/partials/{view.name}",
            decoder=decode,
            transform=regrouped(view),
        )
        for view in views
    ]
    out.append(DeltaCommitter(
        settings,
        topic=rejects_topic(settings, topic),
        table_uri=settings.table_uri("speed", "contract_rejects"),
        schema=arrow_schema(SPEED_REJECTS),
        app_id=f"{app_id}-rejects",
    ))
    return out
