"""The desk's live feed: the speed job's committed partial rows, read from Kafka.

The speed job emits partial rows of the views' grain every CONCORD_SPEED_EMIT_MS and
commits them to its partials topic with each checkpoint (shared.partials); its
committers then append them to `lake.speed.<view>`, and Trino serves them after that
and after planning a query over the lake. The dashboard polled Trino for the current
bar, which on this box changed every ~6 s (BENCHMARKS.md, issue 14). This feed reads
the same committed rows (isolation read_committed: rows of a checkpoint that never
completed are never seen) as they commit and merges them in memory with the views' own
merge (shared.views.regroup), so the current bar and the last price move with every
checkpoint.

Why it agrees with the serving view: the feed starts reading at the first record of
the topic written at or after `complete_from - SKEW_S`, `complete_from` being the start
of the window the feed started in. A window starting at or after `complete_from` can
only have partial rows written after its first trade arrived, so the feed holds every
committed partial row of such a window read so far, in topic order (the current window
too: the page moves from its first minute on); `lake.speed.bars_1m` holds the rows the
committer has appended, also a prefix in topic order. Of two prefixes of the same
sequence, the one with more trades is the longer one, so for each window the page
shows whichever of the feed's row and Trino's row counts more trades (equal counts:
the same row). Windows below the batch boundary are the batch layer's and are never
taken from the feed (`Live.bars` is told the boundary).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

from infra import kafka
from shared.config import Settings
from shared.partials import json_decoder, partials_topic
from shared.tables import arrow_schema, speed_columns
from shared.views import BARS_1M, VIEWS, View, grain, regroup

# Records written this long before the feed's first window are read too: Kafka timestamps are
# the speed job's clock at send time; this covers a small disorder between them.
SKEW_S = 5.0
# Windows older than this are dropped from memory (the page's recent bars come from
# Trino; the feed matters for the last few minutes).
KEEP_S = 600

Key = tuple[Any, ...]
Row = dict[str, Any]


def _scale(sql_type: str) -> Decimal:
    """1E-<scale> of a DECIMAL(p,s) type, to quantize a value the way Trino returns it."""
    scale = int(sql_type.rstrip(")").split(",")[1])
    return Decimal(1).scaleb(-scale)


def vwap(notional: Decimal, volume: Decimal) -> Decimal | None:
    """notional / volume rounded half up to 8 decimals, exactly (shared.views.VWAP)."""
    if volume <= 0:
        return None
    with localcontext() as exact:
        exact.prec = 80
        return (notional / volume).quantize(Decimal("1E-8"), rounding=ROUND_HALF_UP)


def served_row(view: View, partial: Mapping[str, Any]) -> Row:
    """A merged partial row of `view` as Trino serves it (View.merged_columns): decimals
    at their column's scale, the derived vwap."""
    out: Row = {k: partial[k] for k in view.keys}
    out["window_start"] = partial["window_start"]
    with localcontext() as exact:
        exact.prec = 80  # DECIMAL(38,16) sums and their quotients, exactly
        for m in view.measures:
            value = partial[m.name]
            out[m.name] = (value.quantize(_scale(m.type)) if isinstance(value, Decimal)
                           else value)
        if any(d.name == "vwap" for d in view.derived):
            out["vwap"] = vwap(partial["notional"], partial["volume"])
    return out


class Partials:
    """Committed partial rows of the views' grain, merged per grain key and window.

    No I/O: `add` takes decoded rows (from `Live`, or from a test)."""

    def __init__(self, complete_from: datetime, views: Mapping[str, View] = VIEWS) -> None:
        self.grain = grain(views.values())
        self.complete_from = complete_from
        self.rows: dict[Key, Row] = {}
        self.version = 0  # changes whenever a row does

    def _key(self, row: Mapping[str, Any]) -> Key:
        return (*(row[k] for k in self.grain.keys), row["window_start"])

    def add(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Merge decoded partial rows (any extra columns, e.g. `emitted_at`, ignored)."""
        rows = [r for r in rows if r["window_start"] >= self.complete_from]
        if not rows:
            return
        touched = {self._key(r) for r in rows}
        old = [self.rows[k] for k in touched if k in self.rows]
        for merged in regroup(self.grain, [*old, *rows]):
            self.rows[self._key(merged)] = merged
        self.version += 1

    def forget_before(self, moment: datetime) -> None:
        self.rows = {k: r for k, r in self.rows.items() if r["window_start"] >= moment}

    def view_rows(self, view: View, since: datetime,
                  where: Mapping[str, Any] | None = None) -> dict[Key, Row]:
        """(keys..., window_start) -> the served row of `view` for every window from
        max(`since`, complete_from) on (of the keys `where` gives, if it does)."""
        since = max(since, self.complete_from)
        match = list((where or {}).items())
        recent = [r for r in self.rows.values() if r["window_start"] >= since
                  and all(r[k] == v for k, v in match)]
        return {(*(r[k] for k in view.keys), r["window_start"]): served_row(view, r)
                for r in regroup(view, recent)}

    def bars(self, since: datetime, boundary: datetime | None,
             book: tuple[str, str] | None = None) -> dict[Key, Row]:
        """bars_1m rows (of one book, if given), windows from max(since, boundary) on:
        below the batch boundary a window is the batch layer's, never the feed's."""
        if boundary is not None:
            since = max(since, boundary)
        where = None if book is None else {"exchange": book[0], "symbol": book[1]}
        return self.view_rows(BARS_1M, since, where)

    def last_trades(self) -> dict[tuple[str, str], tuple[Decimal, int]]:
        """(exchange, symbol) -> (price, ts ms) of the latest trade by (ts, trade_id), as
        serving.ticker picks it (the close of the largest close key)."""
        best: dict[tuple[str, str], tuple[str, Decimal]] = {}
        for r in self.rows.values():
            book = (r["exchange"], r["symbol"])
            key = r["last_price_key"]
            if book not in best or key > best[book][0]:
                best[book] = (key, r["last_price"])
        return {book: (price.quantize(Decimal("1E-8")), int(key[:15]))
                for book, (key, price) in best.items()}


class Live:
    """`Partials` kept current by a background consumer of the partials topic."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.topic = partials_topic(settings)
        self.lock = threading.Lock()
        self._restart(clock())
        self.decode = json_decoder(arrow_schema(speed_columns(self.partials.grain)))
        self.error: str | None = None
        self.records = 0
        # Called (from the consumer's thread) after each change of the merge.
        self.on_change: Callable[[], None] | None = None
        self.closed = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="dashboard-live")
        self._thread.start()

    def _restart(self, now: float, version: int = 0) -> None:
        """A fresh merge, complete from the start of the window `now` is in (read from
        SKEW_S before it), its version counting on from `version` (after an error: past
        the old merge's, so that a page cached at some version is never taken for the
        fresh merge's)."""
        width = BARS_1M.window_seconds
        first = int(now) // width * width
        fresh = Partials(datetime.fromtimestamp(first, tz=UTC))
        fresh.version = version
        with self.lock:
            self.started = float(first)
            self.partials = fresh

    def close(self) -> None:
        self.closed.set()
        self._thread.join(timeout=5)

    @property
    def version(self) -> int:
        return self.partials.version

    def bars(self, since: datetime, boundary: datetime | None,
             book: tuple[str, str] | None = None) -> dict[Key, Row]:
        """Partials.bars of the feed, now."""
        with self.lock:
            return self.partials.bars(since, boundary, book)

    def last_trades(self) -> dict[tuple[str, str], tuple[Decimal, int]]:
        with self.lock:
            return self.partials.last_trades()

    def _consumer(self) -> Any:
        from confluent_kafka import TopicPartition

        consumer = kafka.confluent_consumer(self.settings, **{
            "group.id": "concord-dashboard-live", "client.id": "concord-dashboard-live",
            "isolation.level": "read_committed", "fetch.wait.max.ms": 200})
        meta = consumer.list_topics(self.topic, timeout=10).topics.get(self.topic)
        if meta is None or meta.error is not None or not meta.partitions:
            consumer.close()
            raise RuntimeError(f"topic {self.topic!r} does not exist yet (the speed job "
                               "creates it: `concord speed start`)")
        since_ms = int((self.started - SKEW_S) * 1000)
        wanted = [TopicPartition(self.topic, p, since_ms) for p in sorted(meta.partitions)]
        found = consumer.offsets_for_times(wanted, timeout=10)
        # No record at or after that time: from the end (OFFSET_END, -1).
        consumer.assign([TopicPartition(self.topic, tp.partition, tp.offset) for tp in found])
        return consumer

    def _run(self) -> None:
        consumer = None
        while not self.closed.is_set():
            try:
                if consumer is None:
                    consumer = self._consumer()
                records = consumer.consume(10_000, timeout=0.5)
                rows = []
                for rec in records:
                    if rec.error() is not None:
                        raise RuntimeError(str(rec.error()))
                    if rec.value() is not None:
                        rows.append(self.decode(rec.value()))
                if rows:
                    with self.lock:
                        self.partials.add(rows)
                        self.partials.forget_before(
                            datetime.fromtimestamp(time.time() - KEEP_S, tz=UTC))
                    self.records += len(rows)
                    self.error = None
                    if self.on_change is not None:
                        self.on_change()
            except Exception as exc:  # noqa: BLE001 - shown on the page; Trino still serves
                # Start over from now: a fresh merge, complete from the next window on
                # (meanwhile the page shows Trino's rows alone).
                self.error = f"live feed: {type(exc).__name__}: {exc}"[:300]
                if consumer is not None:
                    consumer.close()
                    consumer = None
                self.closed.wait(2.0)
                self._restart(time.time(), self.partials.version + 1)
        if consumer is not None:
            consumer.close()
