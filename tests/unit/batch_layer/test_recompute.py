from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from batch_layer.recompute import align, chunks, preview
from shared.config import Settings
from shared.views import BARS_1M, FLOW_5M


def test_range_is_widened_to_whole_windows() -> None:
    t = datetime(2026, 1, 1, 12, 3, 30, tzinfo=UTC)
    assert align(FLOW_5M, t, t + timedelta(seconds=1)) == (
        datetime(2026, 1, 1, 12, 0, tzinfo=UTC), datetime(2026, 1, 1, 12, 5, tzinfo=UTC))
    with pytest.raises(ValueError, match="empty range"):
        align(BARS_1M, t, t)
    with pytest.raises(ValueError, match="timezone"):
        align(BARS_1M, t.replace(tzinfo=None), t)


def test_chunks_cover_the_aligned_range_in_whole_windows() -> None:
    t = datetime(2026, 1, 1, 23, 58, 30, tzinfo=UTC)
    plan = chunks(FLOW_5M, t, t + timedelta(days=2), chunk=timedelta(days=1, minutes=2))
    # 5-minute windows: a 1 day 2 min chunk is cut to 1 day exactly
    assert plan[0] == (datetime(2026, 1, 1, 23, 55, tzinfo=UTC),
                       datetime(2026, 1, 2, 23, 55, tzinfo=UTC))
    assert [hi for _, hi in plan[:-1]] == [lo for lo, _ in plan[1:]]
    assert plan[-1][1] == datetime(2026, 1, 4, 0, 0, tzinfo=UTC)
    assert len(chunks(BARS_1M, t, t + timedelta(seconds=1), chunk=timedelta(seconds=1))) == 1


def test_preview_counts_what_would_be_read_and_replaced(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    t = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    ms = int(t.timestamp() * 1000)
    write_deltalake(settings.table_uri("raw", "trades"), pa.table({
        "ts": pa.array([ms + 1, ms + 61_000, ms + 3_600_000], pa.int64()),
        "trade_date": pa.array([t.date()] * 3, pa.date32()),
    }), partition_by=["trade_date"])
    write_deltalake(settings.table_uri("batch", "bars_1m"), pa.table({
        "window_start": pa.array([t, t, t + timedelta(minutes=1), t + timedelta(hours=2)],
                                 pa.timestamp("us", tz="UTC")),
    }))
    p = preview(settings, BARS_1M, t, t + timedelta(minutes=30))
    assert (p.trades, p.rows_now, p.windows_now, p.chunks) == (2, 3, 2, 1)
    assert p.boundary is None
    empty = preview(Settings(home=tmp_path / "none"), BARS_1M, t, t + timedelta(minutes=1))
    assert (empty.trades, empty.rows_now) == (0, 0)


def test_batch_rows_are_written_clustered_by_book_in_small_row_groups(tmp_path: Path) -> None:
    import random

    import pyarrow.parquet as pq
    from deltalake import DeltaTable

    from batch_layer.recompute import ROW_GROUP_ROWS, write_batch_rows
    from shared.tables import arrow_schema, batch_columns

    schema = arrow_schema(batch_columns(BARS_1M))
    t0 = datetime(2026, 12, 1, tzinfo=UTC)
    books = [(e, s) for e in ("binance", "bybit", "okx") for s in ("BTC-USDT", "ETH-USDT")]
    keys = [(e, s, t0 + timedelta(minutes=m)) for e, s in books for m in range(1440)]
    random.Random(1).shuffle(keys)  # as a minute-by-minute aggregation hands them over
    empty = {f.name: None for f in schema if f.name not in ("exchange", "symbol",
                                                              "window_start")}
    rows = pa.Table.from_pylist([{"exchange": e, "symbol": s, "window_start": w, **empty}
                                 for e, s, w in keys], schema=schema)
    uri = str(tmp_path / "bars_1m")
    write_batch_rows(uri, rows, BARS_1M)
    (path,) = DeltaTable(uri).file_uris()
    meta = pq.ParquetFile(path).metadata
    assert meta.num_row_groups == -(-len(keys) // ROW_GROUP_ROWS)
    back = pq.read_table(path).to_pylist()
    assert [(r["exchange"], r["symbol"], r["window_start"]) for r in back] == sorted(keys)
    # A row group holds a few books (2,048 rows, 1,440 per book: at most 3), and its
    # min/max statistics rule it out for most one-book queries: a book is a candidate
    # in at most 3 of the 5 row groups.
    names = meta.schema.names
    groups = [meta.row_group(i) for i in range(meta.num_row_groups)]
    for i in range(meta.num_row_groups):
        part = pq.ParquetFile(path).read_row_group(i, columns=["exchange", "symbol"])
        assert len(set(zip(*part.to_pydict().values(), strict=True))) <= 3
    for exchange, symbol in books:
        candidates = [g for g in groups
                      if g.column(names.index("exchange")).statistics.min <= exchange
                      <= g.column(names.index("exchange")).statistics.max
                      and g.column(names.index("symbol")).statistics.min <= symbol
                      <= g.column(names.index("symbol")).statistics.max]
        assert 1 <= len(candidates) <= 3, (exchange, symbol)
