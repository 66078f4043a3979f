"""`concord reconcile`: merged speed rows against batch rows, every window both cover.

Both layers compute the same views from the same trades, so where both cover a window
they must agree. Per view, the windows compared are those from the oldest speed row
kept (speed_layer.maintenance) up to the boundary (the batch table holds windows
below it only), narrowed by --from/--to. Per (key, window) present on either side,
Trino merges the speed partials and compares every measure with the batch row.

A difference is *explained* when an exact recount says why: starting from the trades
the batch row was computed from (raw.trades), take away the trades the speed layer
has not consumed yet (its committed Kafka offsets), add the trades still in Kafka that
no batch ingest has read yet, add the duplicates the speed layer counted because their
first copy was more than its dedupe horizon earlier; if the view's measures over that
set (shared.views.evaluate, exact) equal the merged speed row, each of those causes is
named with its count. Otherwise the difference stays unexplained, with both rows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from serving_layer.trino import query
from serving_layer.trino_views import boundary_sql, merge_sql
from shared.config import Settings
from shared.contract import Trade, parse_trade
from shared.views import View, evaluate
from speed_layer.maintenance import keep_from

# Differences explained one by one (each needs the window's trades); beyond this they
# are listed as not examined, which counts as unexplained.
EXPLAIN_LIMIT = 200
SPEED_GROUP = "concord-speed"  # the speed job's Kafka consumer group (speed_layer.job)


@dataclass
class Difference:
    view: str
    key: dict[str, str]
    window_start: str
    batch: dict[str, Any] | None
    speed: dict[str, Any] | None
    explained: bool = False
    causes: list[str] = field(default_factory=list)


@dataclass
class ViewReport:
    view: str
    start: str | None
    end: str | None
    windows_compared: int = 0
    windows_equal: int = 0


@dataclass
class Report:
    views: list[ViewReport] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)

    @property
    def windows_compared(self) -> int:
        return sum(v.windows_compared for v in self.views)

    @property
    def windows_equal(self) -> int:
        return sum(v.windows_equal for v in self.views)

    @property
    def unexplained(self) -> int:
        return sum(not d.explained for d in self.differences)

    def as_json(self) -> str:
        return json.dumps({
            "windows_compared": self.windows_compared, "windows_equal": self.windows_equal,
            "unexplained": self.unexplained,
            "differences": [asdict(d) for d in self.differences],
            "views": [asdict(v) for v in self.views],
        }, default=str, indent=2)


def _ts(moment: datetime) -> str:
    return f"TIMESTAMP '{moment.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%S.%f')}'"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


class Reconciler:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.cat = settings.catalog
        self._kafka: _KafkaView | None = None

    # --- comparing -----------------------------------------------------------------------

    def span(self, view: View, start: datetime | None, end: datetime | None
             ) -> tuple[datetime, datetime] | None:
        """[from, to) both layers cover for `view`, narrowed by the caller's range."""
        row = query(self.settings, f"SELECT (SELECT min(window_start) FROM "
                                   f"{self.cat}.speed.{view.name}), {boundary_sql(view, self.cat)}")
        oldest, boundary = row[0]
        if oldest is None:
            return None
        published = [r[0].replace(tzinfo=UTC) for r in query(
            self.settings, f"SELECT boundary FROM {self.cat}.meta.boundaries "
                           f"WHERE view_name = '{view.name}'")]
        # Speed rows before `keep_from` may have been deleted (a late trade can add some
        # back): the speed side is complete from there on only.
        complete = keep_from(published, self.settings.speed_retention_s)
        lo = max(oldest.replace(tzinfo=UTC), complete or oldest.replace(tzinfo=UTC),
                 start or oldest.replace(tzinfo=UTC))
        hi = min(boundary.replace(tzinfo=UTC), end or boundary.replace(tzinfo=UTC))
        return (lo, hi) if lo < hi else None

    def compare(self, view: View, lo: datetime, hi: datetime
                ) -> tuple[int, int, list[Difference]]:
        keys = [f'"{k}"' for k in view.keys]
        measures = [m.name for m in view.measures]
        within = f"window_start >= {_ts(lo)} AND window_start < {_ts(hi)}"
        speed = merge_sql(view, f"(SELECT * FROM {self.cat}.speed.{view.name} WHERE {within})")
        on = " AND ".join(f's.{c} = b.{c}' for c in [*keys, '"window_start"'])
        equal = " AND ".join(f's."{m}" IS NOT DISTINCT FROM b."{m}"' for m in measures)
        side = ", ".join(
            [f"coalesce(s.{k}, b.{k})" for k in keys] + ["coalesce(s.window_start, b.window_start)"]
            + [f's."{m}"' for m in measures] + [f'b."{m}"' for m in measures]
            + ["s.window_start IS NOT NULL", "b.window_start IS NOT NULL"])
        joined = (f"({speed}) s FULL OUTER JOIN (SELECT * FROM {self.cat}.batch.{view.name} "
                  f"WHERE {within}) b ON {on}")
        compared, same = query(self.settings,
                               f"SELECT count(*), count_if({equal}) FROM {joined}")[0]
        rows = query(self.settings, f"SELECT {side} FROM {joined} WHERE NOT ({equal}) "
                                    f"ORDER BY 1 LIMIT {EXPLAIN_LIMIT + 1}"
                     ) if compared != same else []
        n = len(view.keys)
        out = []
        for r in rows:
            key = dict(zip(view.keys, r[:n], strict=True))
            window = r[n].replace(tzinfo=UTC)
            svals, bvals = r[n + 1:n + 1 + len(measures)], r[n + 1 + len(measures):-2]
            out.append(Difference(
                view.name, key, _iso(window),
                {m: _plain(v) for m, v in zip(measures, bvals, strict=True)} if r[-1] else None,
                {m: _plain(v) for m, v in zip(measures, svals, strict=True)} if r[-2] else None))
        return int(compared), int(same), out

    # --- explaining ------------------------------------------------------------------------

    def explain(self, view: View, diff: Difference) -> None:
        window = datetime.fromisoformat(diff.window_start.replace("Z", "+00:00"))
        lo = int(window.timestamp() * 1000)
        hi = lo + view.window_ms
        where = " AND ".join([f"ts >= {lo}", f"ts < {hi}"] + [
            f"{k} = '{_q(v)}'" for k, v in diff.key.items()])
        batch = [(Trade(r[0], r[1], r[2], r[3], r[4], r[5], int(r[6])), int(r[7]), int(r[8]))
                 for r in query(self.settings,
                                f"SELECT exchange, symbol, trade_id, price, qty, side, ts, "
                                f"kafka_partition, kafka_offset FROM {self.cat}.raw.trades "
                                f"WHERE {where}")]
        kafka = self.kafka()
        matches = _matcher(diff.key, lo, hi)
        identities = {t.identity for t, _, _ in batch}
        tail = []
        for t, p, o, _ in kafka.tail():
            if matches(t) and t.identity not in identities:
                identities.add(t.identity)
                tail.append((t, p, o))
        dups = self.duplicates_beyond_horizon(matches, lo, hi)
        key = (*diff.key.values(), window)
        got = _measures(diff.speed)
        # First as if the speed job had consumed everything (it has, once caught up), then
        # with the offsets it committed on its last checkpoint (it may be behind).
        committed = kafka.speed_offsets()
        attempts: list[dict[int, int] | None] = [None, *([committed] if committed else [])]
        tried = []
        for consumed in attempts:
            def seen(partition: int, offset: int, consumed: dict[int, int] | None = consumed
                     ) -> bool:
                return consumed is None or offset < consumed.get(partition, 0)

            expected = [t for t, p, o in batch if seen(p, o)]
            unconsumed = len(batch) - len(expected)
            pending = [t for t, p, o in tail if seen(p, o)]
            late_dups = [t for t, p, o in dups if seen(p, o)]
            recount = evaluate(view, [*expected, *pending, *late_dups]).get(key)
            tried.append(f"{len(expected)} batch + {len(pending)} pending + {len(late_dups)} "
                         f"duplicate trades -> {recount}")
            if recount == got:
                break
        if recount == got:
            diff.explained = True
            if unconsumed:
                diff.causes.append(f"{unconsumed} trade(s) not yet consumed by the speed layer")
            if pending:
                diff.causes.append(f"{len(pending)} trade(s) in Kafka not yet ingested by the "
                                   "batch layer (run `concord batch run`)")
            if late_dups:
                ids = ", ".join(sorted(t.trade_id for t in late_dups)[:5])
                diff.causes.append(
                    f"{len(late_dups)} duplicate(s) arrived more than the speed layer's dedupe "
                    f"horizon ({self.settings.speed_dedupe_horizon_s} s) after the first copy "
                    f"and were counted again by it (trade_id {ids}); the batch view is right")
            if not diff.causes:
                diff.causes.append("batch row stale against raw.trades: run `concord batch "
                                   "recompute` for this window")
        else:
            stale = evaluate(view, [t for t, _, _ in batch]).get(key)
            if diff.batch is not None and stale is not None and _measures(diff.batch) != stale:
                diff.causes.append("the batch row does not match raw.trades: run "
                                   "`concord batch recompute` for this window")
            diff.causes.append("no recount of the trades matches the speed row (tried: "
                               + "; ".join(tried) + ")")

    def duplicates_beyond_horizon(self, matches: Callable[[Trade], bool], lo: int, hi: int
                                  ) -> list[tuple[Trade, int, int]]:
        """Duplicates (raw.rejects) of the window whose first copy was received longer than
        the dedupe horizon before them: the speed layer counted them."""
        rows = query(self.settings,
                     f"SELECT value, kafka_partition, kafka_offset, kafka_timestamp "
                     f"FROM {self.cat}.raw.rejects WHERE reason = 'duplicate' AND "
                     f"try_cast(json_extract_scalar(from_utf8(value), '$.ts') AS BIGINT) "
                     f"BETWEEN {lo} AND {hi - 1}")
        out = []
        horizon_ms = self.settings.speed_dedupe_horizon_s * 1000
        for value, p, o, received in rows:
            trade = parse_trade(bytes(value))
            if not isinstance(trade, Trade) or not matches(trade):
                continue
            first = query(self.settings,
                          f"SELECT kafka_partition, kafka_offset FROM {self.cat}.raw.trades "
                          f"WHERE exchange = '{_q(trade.exchange)}' AND symbol = "
                          f"'{_q(trade.symbol)}' AND trade_id = '{_q(trade.trade_id)}'")
            if not first:
                continue
            first_ms = self.kafka().timestamp(int(first[0][0]), int(first[0][1]))
            dup_ms = int(received.replace(tzinfo=UTC).timestamp() * 1000)
            if first_ms is not None and dup_ms - first_ms > horizon_ms:
                out.append((trade, int(p), int(o)))
        return out

    def kafka(self) -> _KafkaView:
        if self._kafka is None:
            self._kafka = _KafkaView(self.settings)
        return self._kafka

    def run(self, views: Iterable[View], start: datetime | None = None,
            end: datetime | None = None) -> Report:
        report = Report()
        try:
            for view in views:
                span = self.span(view, start, end)
                vr = ViewReport(view.name, _iso(span[0]) if span else None,
                                _iso(span[1]) if span else None)
                report.views.append(vr)
                if span is None:
                    continue
                vr.windows_compared, vr.windows_equal, diffs = self.compare(view, *span)
                for i, diff in enumerate(diffs):
                    if i < EXPLAIN_LIMIT:
                        self.explain(view, diff)
                    else:
                        diff.causes.append(f"not examined: more than {EXPLAIN_LIMIT} differences")
                report.differences += diffs
        finally:
            if self._kafka is not None:
                self._kafka.close()
        return report


def committed_offsets(settings: Settings, group: str, topic: str) -> dict[int, int] | None:
    """The offsets `group` committed on `topic`, per partition; None when it has none."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=group,
                             enable_auto_commit=False)
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        found = {p: consumer.committed(TopicPartition(topic, p)) for p in sorted(parts)}
    finally:
        consumer.close()
    out = {p: int(o) for p, o in found.items() if o is not None}
    return out or None


def _measures(row: dict[str, Any] | None) -> dict[str, Any] | None:
    """A Difference's side back to exact values (decimals are kept as text there)."""
    if not row:
        return None
    return {m: Decimal(v) if isinstance(v, str) else v for m, v in row.items()}


def _q(text: str) -> str:
    return text.replace("'", "''")


def _matcher(key: dict[str, str], lo: int, hi: int) -> Callable[[Trade], bool]:
    def matches(t: Trade) -> bool:
        return lo <= t.ts < hi and all(getattr(t, k) == v for k, v in key.items())
    return matches


class _KafkaView:
    """What reconcile needs from Kafka: the speed job's committed offsets, the messages no
    batch ingest has read yet, and a message's timestamp by offset."""

    TAIL_LIMIT = 5_000_000

    def __init__(self, settings: Settings) -> None:
        from kafka import KafkaConsumer

        self.settings = settings
        self.topic = settings.topic
        self.consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers,
                                      enable_auto_commit=False, group_id=None,
                                      consumer_timeout_ms=2000)
        self._tail: list[tuple[Trade, int, int, int]] | None = None

    def close(self) -> None:
        self.consumer.close()

    def speed_offsets(self) -> dict[int, int] | None:
        """Next offset the speed job will read per partition (committed on checkpoints);
        None when it never committed (then nothing is taken as unconsumed)."""
        return committed_offsets(self.settings, SPEED_GROUP, self.topic)

    def ingested_until(self) -> dict[int, int]:
        rows = query(self.settings,
                     f"SELECT kafka_partition, max(end_offset) FROM "
                     f"{self.settings.catalog}.meta.ingest_runs WHERE status = 'committed' AND "
                     f"topic = '{_q(self.topic)}' GROUP BY kafka_partition")
        return {int(p): int(o) for p, o in rows}

    def tail(self) -> list[tuple[Trade, int, int, int]]:
        """Accepted trades in Kafka after the last batch ingest: (trade, partition, offset, ms)."""
        from kafka import TopicPartition

        if self._tail is not None:
            return self._tail
        parts = self.consumer.partitions_for_topic(self.topic) or set()
        tps = [TopicPartition(self.topic, p) for p in sorted(parts)]
        ends = self.consumer.end_offsets(tps)
        starts = self.ingested_until()
        out: list[tuple[Trade, int, int, int]] = []
        for tp in tps:
            start, end = starts.get(tp.partition, 0), ends[tp]
            if end - start > self.TAIL_LIMIT:
                raise RuntimeError(f"partition {tp.partition}: {end - start:,} messages not yet "
                                   "ingested; run `concord batch run` before reconciling")
            if start >= end:
                continue
            self.consumer.assign([tp])
            self.consumer.seek(tp, start)
            idle = 0
            while self.consumer.position(tp) < end and idle < 3:
                batch = self.consumer.poll(timeout_ms=2000)
                idle = 0 if batch else idle + 1
                for records in batch.values():
                    for rec in records:
                        if rec.offset >= end:
                            break
                        trade = parse_trade(rec.value)
                        if isinstance(trade, Trade):
                            out.append((trade, tp.partition, rec.offset, rec.timestamp))
        self._tail = out
        return out

    def timestamp(self, partition: int, offset: int) -> int | None:
        from kafka import TopicPartition

        tp = TopicPartition(self.topic, partition)
        self.consumer.assign([tp])
        self.consumer.seek(tp, offset)
        for records in self.consumer.poll(timeout_ms=5000, max_records=1).values():
            for rec in records:
                return int(rec.timestamp)
        return None
