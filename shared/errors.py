"""Errors said in one line (a log line, a status field, a metric's reason)."""

from __future__ import annotations


def first_line(exc: BaseException, limit: int | None = None) -> str:
    """The first line of `exc`'s message, cut at `limit` characters; "" when it has none."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else "")[:limit]
