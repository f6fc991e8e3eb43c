"""Connections to the system of record: one small pool per process, the schema applied first.

Connections are opened lazily, after the web server or Celery forked, and the pool replaces a
connection that broke (a restarted server), so callers only see errors while it is down.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from db.migrate import migrate
from pipeline.errors import MovierecError

CONNECT_TIMEOUT_SECONDS = 3
WAIT_SECONDS = 5.0  # for a free connection; past it the caller answers 503


class DatabaseUnavailable(MovierecError):
    """PostgreSQL cannot be reached or refused the connection."""


class Database:
    def __init__(self, url: str, max_size: int = 4, statement_timeout: float | None = None) -> None:
        """`statement_timeout` (seconds): the server cancels a statement that runs or waits on a
        lock longer, for callers that must not be held (a web thread serves reads too)."""
        self.url = url
        self.statement_timeout = statement_timeout
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
            check=ConnectionPool.check_connection,
            kwargs=settings,
        )
        self._schema_ready = False
        self._lock = threading.Lock()

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """A pooled connection, the schema migrated on first use; DatabaseUnavailable if down."""
        self._open()
        try:
            with self._pool.connection(timeout=WAIT_SECONDS) as conn:
                yield conn
        except (psycopg.OperationalError, PoolTimeout) as error:
            raise unavailable(error) from None

    def _open(self) -> None:
        if self._schema_ready:
            return
        with self._lock:
            if self._schema_ready:
                return
            self._pool.open(wait=False)
            try:
                with psycopg.connect(self.url, connect_timeout=CONNECT_TIMEOUT_SECONDS) as conn:
                    migrate(conn)
            except psycopg.OperationalError as error:
                raise unavailable(error) from None
            self._schema_ready = True

    def close(self) -> None:
        self._pool.close()


def unavailable(error: BaseException) -> DatabaseUnavailable:
    """The error's first line only: later lines may repeat the connection string."""
    lines = str(error).strip().splitlines()
    return DatabaseUnavailable(
        f"the database is unavailable: {lines[0] if lines else type(error).__name__}"
    )


@cache
def database(url: str, statement_timeout: float | None = None) -> Database:
    """The process's pool for `url` (one per statement timeout)."""
    return Database(url, statement_timeout=statement_timeout)
