from __future__ import annotations

from pathlib import Path

import pytest

from batch_layer.run import contiguous, merge_ranges


def test_contiguous_windows_form_ranges() -> None:
    assert contiguous([120, 0, 60, 300, 360, 60], 60) == [(0, 180), (300, 420)]
    assert contiguous([], 60) == []


def test_merge_ranges_joins_overlapping_and_adjacent() -> None:
    assert merge_ranges([(300, 400), (0, 60), (60, 120), (100, 200)]) == [(0, 200), (300, 400)]
    assert merge_ranges([]) == []


def test_ingested_until_is_the_end_of_the_last_committed_run_per_partition() -> None:
    from shared.bookkeeping import ingested_until

    ledger = [
        {"run_id": 1, "kafka_partition": 0, "end_offset": 10, "status": "planned"},
        {"run_id": 1, "kafka_partition": 0, "end_offset": 10, "status": "committed"},
        {"run_id": 2, "kafka_partition": 0, "end_offset": 25, "status": "committed"},
        {"run_id": 2, "kafka_partition": 1, "end_offset": 7, "status": "committed"},
        {"run_id": 3, "kafka_partition": 1, "end_offset": 40, "status": "planned"},
    ]
    assert ingested_until(ledger) == {0: 25, 1: 7}
    assert ingested_until([]) == {}


def test_repeat_runs_once_without_an_interval() -> None:
    from batch_layer.run import repeat

    runs: list[int] = []
    repeat(lambda: runs.append(1), None, sleep=lambda s: pytest.fail("must not wait"))
    assert runs == [1]


def test_repeat_keeps_start_to_start_intervals_and_never_waits_negative() -> None:
    from batch_layer.run import repeat

    clock = [0.0]
    durations = iter([10.0, 200.0, 30.0])  # the second run takes longer than the interval
    starts: list[float] = []
    pauses: list[float] = []

    def once() -> None:
        starts.append(clock[0])
        clock[0] += next(durations)

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    repeat(once, 180, on_pause=pauses.append, until=lambda: len(starts) == 3, sleep=sleep,
           clock=lambda: clock[0])
    assert starts == [0.0, 180.0, 380.0]
    assert pauses == [170.0, 0.0]


def test_new_trades_reads_newest_figures_and_the_distinct_grains_of_new_runs(
        tmp_path: Path) -> None:
    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake

    from batch_layer.run import new_trades

    uri = str(tmp_path / "trades")
    for run, ts in ((1, [5_000, 61_000, 62_000]), (2, [119_999, 120_000, 3_000]),
                    (3, [600_000])):
        write_deltalake(uri, pa.table({"ts": pa.array(ts, pa.int64()),
                                       "ingest_run": pa.array([run] * len(ts), pa.int64())}),
                        mode="append")
    newest_run, newest_ts, new = new_trades(DeltaTable(uri), 1, 60_000)
    assert (newest_run, newest_ts) == (3, 600_000)
    assert sorted(zip(new["ts"].tolist(), new["ingest_run"].tolist(), strict=True)) == [
        (0, 2), (60_000, 2), (120_000, 2), (600_000, 3)]
    _, _, none = new_trades(DeltaTable(uri), 3, 60_000)
    assert len(none["ts"]) == 0 and len(none["ingest_run"]) == 0


def test_a_failed_run_ends_a_single_run_but_not_a_loop() -> None:
    from batch_layer.run import repeat

    outcomes = iter([RuntimeError("broker down"), None, None])
    runs: list[int] = []
    errors: list[str] = []

    def once() -> None:
        runs.append(1)
        if (exc := next(outcomes)) is not None:
            raise exc

    repeat(once, 10, on_error=lambda exc: errors.append(str(exc)),
           until=lambda: len(runs) == 3, sleep=lambda s: None)
    assert (len(runs), errors) == (3, ["broker down"])
    with pytest.raises(RuntimeError, match="broker down"):
        repeat(lambda: (_ for _ in ()).throw(RuntimeError("broker down")), None,
               on_error=lambda exc: errors.append(str(exc)))
    with pytest.raises(RuntimeError):  # a loop without on_error ends on the first failure
        repeat(lambda: (_ for _ in ()).throw(RuntimeError("x")), 10, sleep=lambda s: None)
