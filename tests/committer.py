"""Driving a speed-layer Delta committer in a test, without its job's loop."""

from __future__ import annotations

import time

from speed_layer.delta_committer import DeltaCommitter


def drain(committer: DeltaCommitter, expected: int, timeout_s: float = 60) -> int:
    """Poll and commit until `expected` records were written or `timeout_s` passed;
    returns how many were written."""
    deadline = time.monotonic() + timeout_s
    written = 0
    while written < expected and time.monotonic() < deadline:
        written += committer.poll_once(timeout_ms=500)
    return written
