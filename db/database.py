"""Connections to the system of record: one small pool per process, the schema applied first.

Connections are opened lazily, after the web server or Celery forked, and the pool replaces a
connection that broke (a restarted server), so callers only see errors while it is down.

A server that stops answering without closing its sockets (frozen, or cut off by a network
that drops packets) cannot cancel a statement, nor take a cancel request: inside a
`resilience.deadline.within()` block, a connection still in use when the deadline passes is
abandoned (its socket shut down, the pool drops it) and the caller gets DatabaseTimeout.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import cache

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from db.migrate import migrate
from pipeline.errors import MovierecError
from resilience import deadline
from resilience.breaker import CircuitBreaker, judged
from resilience.watchdog import WATCHDOG, Watch

CONNECT_TIMEOUT_SECONDS = 3
WAIT_SECONDS = 5.0  # for a free connection; past it the caller answers 503


class DatabaseUnavailable(MovierecError):
    """PostgreSQL cannot be reached or refused the connection."""


class DatabaseTimeout(DatabaseUnavailable):
    """PostgreSQL did not answer in time. `sent`: a statement may have reached it, so whether a
    write took effect is unknown to the caller (a retry of an idempotent write is safe)."""

    def __init__(self, message: str, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


class DatabaseBusy(DatabaseUnavailable):
    """Every slot for database work is taken: the caller answers at once rather than queue."""


class Database:
    def __init__(
        self,
        url: str,
        max_size: int = 4,
        statement_timeout: float | None = None,
        slots: int | None = None,
        breaker: CircuitBreaker | None = None,
        call_seconds: float | None = None,
    ) -> None:
        """`statement_timeout` (seconds): the server cancels a statement that runs or waits on a
        lock longer. `slots`: at most this many callers at once, the others refused at once (a
        bulkhead, so callers stuck on the database cannot take every thread of a process).
        `breaker`: fails calls fast after a timeout, until a probe finds the server answering.
        `call_seconds`: the deadline of a connection's use when the caller has none of its own."""
        self.url = url
        self.call_seconds = call_seconds
        self.statement_timeout = statement_timeout
        self.breaker = breaker
        self._slots = None if slots is None else threading.BoundedSemaphore(slots)
        # Autocommit: reads leave no transaction open; writes use conn.transaction().
        settings: dict[str, object] = {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
        settings["autocommit"] = True
        if statement_timeout is not None:
            settings["options"] = f"-c statement_timeout={round(statement_timeout * 1000)}"
        self._pool = ConnectionPool(
            url,
            min_size=0,
            max_size=max_size,
            open=False,
            check=self._check,
            kwargs=settings,
        )
        self._schema_ready = False
        self._lock = threading.Lock()

    @contextmanager
    def connection(self, slot: bool = True) -> Iterator[psycopg.Connection]:
        """A pooled connection, the schema migrated on first use; DatabaseUnavailable if down,
        DatabaseTimeout past the thread's deadline, DatabaseBusy when no slot is free (`slot`
        False: outside the slots, for a check that must not read "busy" as "broken")."""
        if self.breaker is not None and not self.breaker.admit():
            raise DatabaseTimeout("the database did not answer in time; failing fast", sent=False)
        own = deadline.remaining() is None and self.call_seconds is not None
        with (
            deadline.within(self.call_seconds) if own else nullcontext(),
            self._slot() if slot else nullcontext(),
        ):
            self._open()
            watch: Watch | None = None
            wait = deadline.capped(WAIT_SECONDS)
            try:
                with self._pool.connection(timeout=wait) as conn, self._watched(conn) as watch:
                    yield conn
            except PoolTimeout as error:
                raise self._timed_out(error, sent=False, waited=wait) from None
            except psycopg.OperationalError as error:
                if watch is not None and watch.fired:
                    raise self._timed_out(error, sent=True, waited=watch.seconds) from None
                raise unavailable(error) from None
        if self.breaker is not None:
            self.breaker.succeeded()

    def _slot(self) -> AbstractContextManager[object]:
        if self._slots is None:
            return nullcontext()
        if not self._slots.acquire(blocking=False):
            raise DatabaseBusy("every connection to the database is busy; try again shortly")
        return _released(self._slots)

    def _watched(self, conn: psycopg.Connection) -> AbstractContextManager[Watch | None]:
        """Abandon `conn` if it is still in use when the thread's deadline passes."""
        left = deadline.remaining()
        if left is None:
            return nullcontext()
        return WATCHDOG.watching(conn.fileno(), max(left, 0.0))

    def _check(self, conn: psycopg.Connection) -> None:
        """The pool's check of a connection it hands out, within the deadline: a frozen server
        would hold it forever."""
        with self._watched(conn):
            ConnectionPool.check_connection(conn)

    def _timed_out(self, error: BaseException, sent: bool, waited: float) -> DatabaseTimeout:
        if self.breaker is not None and judged(waited):
            self.breaker.timed_out()
        waited = "answer" if sent else "give a connection"
        return DatabaseTimeout(f"the database did not {waited} in time ({error})", sent=sent)

    def _open(self) -> None:
        if self._schema_ready:
            return
        with self._lock:
            if self._schema_ready:
                return
            self._pool.open(wait=False)
            watch: Watch | None = None
            try:
                with (
                    psycopg.connect(self.url, connect_timeout=CONNECT_TIMEOUT_SECONDS) as conn,
                    self._watched(conn) as watch,
                ):
                    migrate(conn)
            except psycopg.OperationalError as error:
                if watch is not None and watch.fired:
                    raise self._timed_out(error, sent=True, waited=watch.seconds) from None
                raise unavailable(error) from None
            self._schema_ready = True

    def close(self) -> None:
        self._pool.close()


@contextmanager
def _released(semaphore: threading.BoundedSemaphore) -> Iterator[None]:
    try:
        yield
    finally:
        semaphore.release()


def unavailable(error: BaseException) -> DatabaseUnavailable:
    """The error's first line only: later lines may repeat the connection string."""
    lines = str(error).strip().splitlines()
    return DatabaseUnavailable(
        f"the database is unavailable: {lines[0] if lines else type(error).__name__}"
    )


@cache
def database(url: str, call_seconds: float | None = None) -> Database:
    """The process's pool for `url` (one per deadline of a connection's use; None: no deadline,
    for a command such as an import, which takes as long as the data does)."""
    return Database(url, call_seconds=call_seconds)
