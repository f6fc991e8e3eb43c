"""A circuit breaker per dependency and process: after a call times out, the others fail at once
instead of each paying the whole deadline, and one probe per interval finds out when the
dependency answers again.

States: closed (calls go through), open (calls are refused until `retry_at`), half-open (one
probe is let through and the others refused while it runs; its success closes the breaker, its
failure opens it for another interval). A probe that never reports back, lost to an unrelated
error, counts as failed once `probe_seconds` (the longest a call may take) have passed.

pybreaker, the maintained library for this, lets every concurrent call through while half-open
and counts failures of any kind; here only timeouts open the breaker (a refused connection
already fails fast), and exactly one probe runs at a time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import Enum

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


class Event(Enum):
    TIMEOUT = "timeout"
    OPENED = "opened"
    CLOSED = "closed"


Listener = Callable[[str, Event], None]
# A timeout opens a breaker only when the call waited this long: a call left with a sliver of
# its request's deadline (spent on another dependency) says nothing about this one.
JUDGED_AFTER_SECONDS = 0.2


def judged(waited: float | None) -> bool:
    """Whether a call that timed out after allowing `waited` seconds (None: no limit) tells
    anything about its dependency."""
    return waited is None or waited >= JUDGED_AFTER_SECONDS


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        open_seconds: float,
        listener: Listener | None = None,
        clock: Callable[[], float] = time.monotonic,
        probe_seconds: float | None = None,
    ) -> None:
        self.name = name
        self.open_seconds = open_seconds
        self.probe_seconds = open_seconds if probe_seconds is None else probe_seconds
        self._listener = listener
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CLOSED
        self._prober: int | None = None  # the thread whose call is the probe, while half-open
        self._retry_at = 0.0
        self._opened_at: float | None = None

    @property
    def state(self) -> str:
        return self._state

    def open_for(self) -> float | None:
        """Seconds since the breaker opened; None while closed."""
        opened = self._opened_at
        return None if opened is None else self._clock() - opened

    def admit(self) -> bool:
        """Whether a call may go out now; while open, at most one per interval does (the probe),
        and the thread making it may go on (a connect, then its command)."""
        with self._lock:
            if self._state == CLOSED:
                return True
            now = self._clock()
            if now < self._retry_at:
                return self._state == HALF_OPEN and self._prober == threading.get_ident()
            self._state, self._prober = HALF_OPEN, threading.get_ident()
            self._retry_at = now + max(self.open_seconds, self.probe_seconds)
            return True

    def succeeded(self) -> None:
        if self._state == CLOSED:  # the common case, without taking the lock
            return
        with self._lock:
            self._state, self._opened_at, self._prober = CLOSED, None, None
        self._tell(Event.CLOSED)

    def timed_out(self) -> None:
        """A call gave up on the dependency: open, or stay open for another interval."""
        with self._lock:
            now = self._clock()
            was_closed = self._state == CLOSED
            self._state, self._retry_at, self._prober = OPEN, now + self.open_seconds, None
            if was_closed:
                self._opened_at = now
        self._tell(Event.TIMEOUT)
        if was_closed:
            self._tell(Event.OPENED)

    def _tell(self, event: Event) -> None:
        if self._listener is not None:
            self._listener(self.name, event)
