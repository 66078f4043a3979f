from __future__ import annotations

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
