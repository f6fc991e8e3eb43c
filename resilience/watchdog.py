"""Abandons connections whose deadline passed: a thread blocked reading from a frozen server is
woken by shutting its socket down, the only way out when the server cannot even take a cancel
request. The connection is broken afterwards and its pool drops it."""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass(order=True)
class Watch:
    at: float  # time.monotonic()
    order: int
    fileno: int = field(compare=False)
    seconds: float = field(compare=False)  # allowed from the start
    fired: bool = field(default=False, compare=False)
    done: bool = field(default=False, compare=False)


class Watchdog:
    """One thread per process, however many connections it watches."""

    def __init__(self) -> None:
        self._heap: list[Watch] = []
        self._counter = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    @contextmanager
    def watching(self, fileno: int, seconds: float) -> Iterator[Watch]:
        """Shut the socket `fileno` down if the block still runs `seconds` from now; the block
        then sees its connection fail, and `Watch.fired` says why."""
        watch = Watch(time.monotonic() + seconds, next(self._counter), fileno, seconds)
        with self._wake:
            self._start()
            heapq.heappush(self._heap, watch)
            self._wake.notify()
        try:
            yield watch
        finally:
            with self._wake:  # under the lock: the fd is never shut once the block has left
                watch.done = True

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():  # e.g. after a fork
            self._thread = threading.Thread(target=self._run, name="watchdog", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        with self._wake:
            while True:
                while self._heap and self._heap[0].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._wake.wait()
                    continue
                wait = self._heap[0].at - time.monotonic()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                _abandon(heapq.heappop(self._heap))


def _abandon(watch: Watch) -> None:
    watch.fired = True
    try:  # a duplicate of the descriptor: shutting it down shuts the shared socket down
        with socket.socket(fileno=os.dup(watch.fileno)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError as error:  # already closed by its owner: nothing is waiting on it
        log.debug("watchdog: socket %d already gone: %s", watch.fileno, error)


WATCHDOG = Watchdog()
# A child forked while another thread held the lock would wait on it forever: start afresh.
os.register_at_fork(after_in_child=WATCHDOG.__init__)
