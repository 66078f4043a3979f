"""`concord reconcile`: merged speed rows against batch rows, every window both cover.

Both layers compute the same views from the same trades, so where both cover a window
they must agree. Per view, the windows compared are those from the oldest speed row
kept (shared.bookkeeping.keep_from) up to the boundary (the batch table holds windows
below it only), narrowed by --from/--to. Per (key, window) present on either side,
Trino merges the speed partials and compares every measure with the batch row.

A difference is *explained* when an exact recount says why. The candidates are the
trades of the window in raw.trades (what the batch row was computed from), the trades
still in Kafka that no batch ingest has read yet, and the duplicates the speed layer
counted because their first copy came more than its dedupe horizon earlier. The speed
layer reads each partition in order, so it holds a prefix of each partition's
candidates: all of them once caught up, fewer while it is behind (reconcile reads the
speed rows first and Kafka after, so a live stream always leaves it a little behind).
If the view's measures over some such prefix (shared.views.evaluate, exact) equal the
merged speed row, each cause is named with its count (`recount_search`). Otherwise the
difference stays unexplained, with both rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from infra import kafka
from serving_layer.trino import query
from serving_layer.trino_views import boundary_sql, merge_sql
from shared.bookkeeping import (
    boundary_rows_sql,
    history_of,
    ingest_ledger_sql,
    ingested_until,
    keep_from,
    ledger_rows,
)
from shared.config import Settings
from shared.contract import Trade, parse_trade
from shared.views import Agg, View, evaluate

# Differences listed and explained per view (each needs its window's trades); beyond
# this they are counted as not examined, which counts as unexplained.
EXPLAIN_LIMIT = 200
# Ways of the speed layer being behind tried per difference (see recount_search).
MAX_TRIES = 2_000
# Where a candidate trade of a recount comes from.
BATCH, PENDING, LATE = "raw.trades", "not yet ingested", "duplicate beyond the horizon"


@dataclass
class Difference:
    view: str
    key: dict[str, str]
    window_start: str
    batch: dict[str, Any] | None
    speed: dict[str, Any] | None
    explained: bool = False
    causes: list[str] = field(default_factory=list)


@dataclass(frozen=True, eq=False)
class Candidate:
    """A trade the speed row may hold, with its Kafka coordinates and where it was found."""

    trade: Trade
    partition: int
    offset: int
    source: str  # BATCH, PENDING or LATE


def recount_search(view: View, key: tuple[Any, ...], got: dict[str, Any] | None,
                   candidates: list[Candidate], max_tries: int = MAX_TRIES
                   ) -> tuple[list[Candidate] | None, int]:
    """The candidates the speed row `got` holds, if a way of being behind explains it.

    The speed layer reads each Kafka partition in offset order, so at any moment it holds
    a prefix of each partition's candidates. Tried first: all of them (caught up), then
    ever fewer from the end of the partitions. With a COUNT measure only the cuts that
    leave its count are tried. Returns (the prefix whose exact recount equals `got`, or
    None; how many cuts were tried).
    """
    parts: dict[int, list[Candidate]] = {}
    for c in sorted(candidates, key=lambda c: (c.partition, c.offset)):
        parts.setdefault(c.partition, []).append(c)
    lists = list(parts.values())
    counted = next((m.name for m in view.measures if m.agg is Agg.COUNT), None)
    if counted is not None:
        have = got[counted] if got else 0
        totals = [len(candidates) - have] if 0 <= have <= len(candidates) else []
    else:
        totals = list(range(len(candidates) + 1))
    tries = 0
    for behind in totals:
        for cut in _cuts([len(x) for x in lists], behind):
            if tries >= max_tries:
                return None, tries
            tries += 1
            held = [c for x, n in zip(lists, cut, strict=True) for c in x[:len(x) - n]]
            if evaluate(view, [c.trade for c in held]).get(key) == got:
                return held, tries
    return None, tries


def _cuts(sizes: list[int], total: int) -> Iterator[tuple[int, ...]]:
    """Every way to take `total` items from the ends of lists of `sizes`."""
    if not sizes:
        if total == 0:
            yield ()
        return
    for n in range(min(sizes[0], total) + 1):
        for rest in _cuts(sizes[1:], total - n):
            yield (n, *rest)


@dataclass
class ViewReport:
    view: str
    start: str | None
    end: str | None
    windows_compared: int = 0
    windows_equal: int = 0
    # Differences beyond EXPLAIN_LIMIT, not listed; they count as unexplained.
    not_examined: int = 0


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
        return (sum(not d.explained for d in self.differences)
                + sum(v.not_examined for v in self.views))

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
        rows = query(self.settings, boundary_rows_sql(self.cat))
        history = history_of(dict(zip(("view_name", "boundary", "run_id", "published_at"), r,
                                      strict=True)) for r in rows)
        published = [b for b, _ in history.get(view.name, [])]
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
        # One query, so the counts and the differing rows are of one snapshot: the rows
        # that differ come first, and each row carries the totals.
        rows = query(self.settings,
                     f"SELECT {side}, count(*) OVER (), count_if({equal}) OVER (), {equal} "
                     f"FROM {joined} ORDER BY {equal}, 1 LIMIT {EXPLAIN_LIMIT}")
        compared, same = (rows[0][-3], rows[0][-2]) if rows else (0, 0)
        rows = [r[:-3] for r in rows if not r[-1]]
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

    def explain(self, view: View, diffs: list[Difference]) -> None:
        """Explain `diffs` (of one view) by exact recounts, with a few queries for all."""
        if not diffs:
            return
        # The Kafka tail is read now, after the speed rows were: it holds every trade the
        # speed rows can hold that raw.trades does not. raw.trades is read after the
        # ledger the tail starts from, so a batch ingest in between overlaps, never gaps.
        tail = self.kafka().tail()
        windows = []
        for diff in diffs:
            lo = int(_start(diff).timestamp() * 1000)
            windows.append((diff, _Window(diff.key, lo, lo + view.window_ms)))
        batch = self.raw_trades([m for _, m in windows])
        dups = self.duplicates_beyond_horizon([m for _, m in windows])
        for diff, matches in windows:
            candidates = [c for c in batch if matches(c.trade)]
            identities = {c.trade.identity for c in candidates}
            for c in tail:
                if matches(c.trade) and c.trade.identity not in identities:
                    identities.add(c.trade.identity)
                    candidates.append(c)
            candidates += [c for c in dups if matches(c.trade)]
            self._explain_one(view, diff, candidates)

    def _explain_one(self, view: View, diff: Difference, candidates: list[Candidate]) -> None:
        key = (*diff.key.values(), _start(diff))
        got = _measures(diff.speed)
        consumed, tries = recount_search(view, key, got, candidates)
        if consumed is None:
            stale = evaluate(view, [c.trade for c in candidates if c.source == BATCH]).get(key)
            if diff.batch is not None and stale is not None and _measures(diff.batch) != stale:
                diff.causes.append("the batch row does not match raw.trades: run "
                                   "`concord batch recompute` for this window")
            counts = {s: sum(c.source == s for c in candidates) for s in (BATCH, PENDING, LATE)}
            diff.causes.append(
                f"no recount of the trades matches the speed row ({counts[BATCH]} in raw.trades, "
                f"{counts[PENDING]} in Kafka not yet ingested, {counts[LATE]} duplicates beyond "
                f"the dedupe horizon; {tries} ways of the speed layer being behind tried)")
            return
        diff.explained = True
        taken = set(map(id, consumed))
        behind = [c for c in candidates if id(c) not in taken]
        pending = [c for c in consumed if c.source == PENDING]
        late = [c for c in consumed if c.source == LATE]
        if behind:
            diff.causes.append(f"{len(behind)} trade(s) not yet in lake.speed when it was read "
                               "(the speed layer was behind by them)")
        if pending:
            diff.causes.append(f"{len(pending)} trade(s) in Kafka not yet ingested by the "
                               "batch layer (run `concord batch run`)")
        if late:
            ids = ", ".join(sorted(c.trade.trade_id for c in late)[:5])
            diff.causes.append(
                f"{len(late)} duplicate(s) arrived more than the speed layer's dedupe "
                f"horizon ({self.settings.speed_dedupe_horizon_s} s) after the first copy "
                f"and were counted again by it (trade_id {ids}); the batch view is right")
        if not diff.causes:
            diff.causes.append("batch row stale against raw.trades: run `concord batch "
                               "recompute` for this window")

    def raw_trades(self, windows: list[_Window]) -> list[Candidate]:
        """Trades of raw.trades in any of `windows`, in queries of 50 windows."""
        out = []
        for i in range(0, len(windows), 50):
            where = " OR ".join(
                "(" + " AND ".join([f"ts >= {w.lo}", f"ts < {w.hi}"]
                                   + [f"{k} = '{_q(v)}'" for k, v in w.key.items()]) + ")"
                for w in windows[i:i + 50])
            out += [Candidate(Trade(r[0], r[1], r[2], r[3], r[4], r[5], int(r[6])),
                              int(r[7]), int(r[8]), BATCH)
                    for r in query(self.settings,
                                   f"SELECT exchange, symbol, trade_id, price, qty, side, ts, "
                                   f"kafka_partition, kafka_offset FROM {self.cat}.raw.trades "
                                   f"WHERE {where}")]
        return out

    def duplicates_beyond_horizon(self, windows: list[_Window]) -> list[Candidate]:
        """Duplicates (raw.rejects) in any of `windows` whose first copy was received longer
        than the dedupe horizon before them: the speed layer counted them again."""
        lo, hi = min(w.lo for w in windows), max(w.hi for w in windows)
        rows = query(self.settings,
                     f"SELECT value, kafka_partition, kafka_offset, kafka_timestamp "
                     f"FROM {self.cat}.raw.rejects WHERE reason = 'duplicate' AND "
                     f"try_cast(json_extract_scalar(from_utf8(value), '$.ts') AS BIGINT) "
                     f"BETWEEN {lo} AND {hi - 1}")
        found = []
        for value, p, o, received in rows:
            trade = parse_trade(bytes(value))
            if isinstance(trade, Trade) and any(w(trade) for w in windows):
                found.append((trade, int(p), int(o), received))
        if not found:
            return []
        firsts: dict[tuple[str, str, str], tuple[int, int]] = {}
        identities = sorted({t.identity for t, *_ in found})
        for i in range(0, len(identities), 50):
            where = " OR ".join(f"(exchange = '{_q(e)}' AND symbol = '{_q(s)}' AND "
                                f"trade_id = '{_q(t)}')" for e, s, t in identities[i:i + 50])
            for e, s, t, p, o in query(self.settings,
                                       f"SELECT exchange, symbol, trade_id, kafka_partition, "
                                       f"kafka_offset FROM {self.cat}.raw.trades WHERE {where}"):
                firsts[(e, s, t)] = (int(p), int(o))
        out = []
        horizon_ms = self.settings.speed_dedupe_horizon_s * 1000
        for trade, p, o, received in found:
            first = firsts.get(trade.identity)
            if first is None:
                continue
            first_ms = self.kafka().timestamp(*first)
            dup_ms = int(received.replace(tzinfo=UTC).timestamp() * 1000)
            if first_ms is not None and dup_ms - first_ms > horizon_ms:
                out.append(Candidate(trade, p, o, LATE))
        return out

    def kafka(self) -> _KafkaView:
        if self._kafka is None:
            self._kafka = _KafkaView(self.settings)
        return self._kafka

    @staticmethod
    def check_range(start: datetime | None, end: datetime | None) -> None:
        """Raises unless [start, end) is a range (either end may be open)."""
        if start is not None and end is not None and end <= start:
            raise ValueError("--to must be after --from")

    def run(self, views: Iterable[View], start: datetime | None = None,
            end: datetime | None = None) -> Report:
        self.check_range(start, end)
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
                vr.not_examined = vr.windows_compared - vr.windows_equal - len(diffs)
                self.explain(view, diffs)
                report.differences += diffs
        finally:
            if self._kafka is not None:
                self._kafka.close()
        return report


def _measures(row: dict[str, Any] | None) -> dict[str, Any] | None:
    """A Difference's side back to exact values (decimals are kept as text there)."""
    if not row:
        return None
    return {m: Decimal(v) if isinstance(v, str) else v for m, v in row.items()}


def _start(diff: Difference) -> datetime:
    return datetime.fromisoformat(diff.window_start.replace("Z", "+00:00"))


def _q(text: str) -> str:
    return text.replace("'", "''")


@dataclass(frozen=True)
class _Window:
    """One (key, window) of a view: which trades fall in it."""

    key: dict[str, str]
    lo: int  # ms, inclusive
    hi: int  # ms, exclusive

    def __call__(self, t: Trade) -> bool:
        return self.lo <= t.ts < self.hi and all(getattr(t, k) == v for k, v in self.key.items())


class _KafkaView:
    """What reconcile needs from Kafka: the messages no batch ingest has read yet, and a
    message's timestamp by offset."""

    TAIL_LIMIT = 5_000_000

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = settings.topic
        self.consumer = kafka.consumer(settings, enable_auto_commit=False, group_id=None,
                                       consumer_timeout_ms=2000)

    def close(self) -> None:
        self.consumer.close()

    def ingested_until(self) -> dict[int, int]:
        rows = query(self.settings, ingest_ledger_sql(self.settings.catalog, self.topic))
        return ingested_until(ledger_rows(rows))

    def tail(self) -> list[Candidate]:
        """Accepted trades in Kafka after the last batch ingest, as of now."""
        from kafka import TopicPartition

        parts = self.consumer.partitions_for_topic(self.topic) or set()
        tps = [TopicPartition(self.topic, p) for p in sorted(parts)]
        ends = self.consumer.end_offsets(tps)
        starts = self.ingested_until()
        out: list[Candidate] = []
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
                            out.append(Candidate(trade, tp.partition, rec.offset, PENDING))
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
