"""The fault benchmark's short version (issue 15): two of each fault kind on the test
session's stack, killed mid-stream while a live stream, the speed job and the batch loop
run; then nothing lost, nothing counted twice, serving equal to the oracle, reconcile
clean (bench/faults.py holds the oracle and the checks; `python -m bench.faults` runs
ten of each)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.faults import parser, run
from harness.stack import own_home
from shared.config import Settings

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(3000)
def test_two_of_each_fault_lose_nothing_and_count_nothing_twice(
    stack: Settings, unique: str, tmp_path: Path
) -> None:
    args = parser().parse_args(["--per-kind", "2", "--pause", "1", "4", "--batch-every", "30"])
    settings = own_home(stack, tmp_path, topic=f"e2e-faults-{unique}",
                        speed_dedupe_horizon_s=args.horizon_s)
    report = run(args, settings=settings, servers=stack)
    lines = report.lines()
    print("\n".join(lines))
    assert len(report.faults) == 2 * len(args.kinds)
    assert report.ok(), "\n".join(lines)
