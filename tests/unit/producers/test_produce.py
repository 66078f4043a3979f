"""How `concord produce` picks a generated stream's seed and length."""

from __future__ import annotations

from producers.produce import DEFAULT_COUNT, DEFAULT_SEED, stream_count, stream_seed


def test_a_given_seed_is_kept_live_or_not() -> None:
    assert stream_seed(7, live=True) == 7
    assert stream_seed(7, live=False) == 7


def test_a_test_stream_repeats_and_a_live_stream_never_does() -> None:
    assert stream_seed(None, live=False) == DEFAULT_SEED
    seeds = {stream_seed(None, live=True) for _ in range(3)}
    assert len(seeds) == 3 and DEFAULT_SEED not in seeds
    assert all(0 <= s < 2**63 for s in seeds)


def test_length_is_the_count_else_the_duration_else_the_default() -> None:
    assert stream_count(5, duration_s=60) == 5
    assert stream_count(None, duration_s=60) is None
    assert stream_count(None, duration_s=None) == DEFAULT_COUNT
