"""The current thread's deadline: every Redis and PostgreSQL call made inside `within()` gives
up when it passes, however many calls the block makes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

_local = threading.local()


@contextmanager
def within(seconds: float) -> Iterator[None]:
    """Calls in this block end `seconds` from now at the latest, or earlier if an enclosing
    block ends first."""
    outer: float | None = getattr(_local, "at", None)
    at = time.monotonic() + seconds
    _local.at = at if outer is None else min(at, outer)
    try:
        yield
    finally:
        _local.at = outer


def remaining() -> float | None:
    """Seconds left (negative once passed); None outside any `within()` block."""
    at: float | None = getattr(_local, "at", None)
    return None if at is None else at - time.monotonic()


def capped(seconds: float | None) -> float | None:
    """`seconds` (None: no limit of its own) shortened to what the deadline leaves, and never
    below a millisecond: a zero timeout would make a socket non-blocking."""
    left = remaining()
    if left is None:
        return seconds
    left = max(left, 0.001)
    return left if seconds is None else min(seconds, left)
