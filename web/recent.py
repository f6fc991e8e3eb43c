"""A value computed at most once per interval in a web process.

For reads of the version store that every poll or page would otherwise repeat (/health's
check, the dashboard's evaluation report): while the store hangs, one request in an interval
waits for its timeout, not each of them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Recent(Generic[T]):
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._value: tuple[float, T] | None = None

    def get(self, compute: Callable[[], T]) -> T:
        now = time.monotonic()
        with self._lock:
            if self._value is not None and now - self._value[0] < self.seconds:
                return self._value[1]
        value = compute()
        with self._lock:
            self._value = (time.monotonic(), value)
        return value
