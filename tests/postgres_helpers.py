"""Shared by the database tests: a real PostgreSQL server on a folder of the test's."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from service.embedded_postgres import STOP_SIGNAL, start_postgres


@contextmanager
def postgres_server(folder: Path) -> Iterator[str]:
    """A real PostgreSQL server for one test module; yields its URL, password included.

    The stop is PostgreSQL's fast shutdown, so connections a test left open do not hold it up.
    """
    process, url = start_postgres(folder)
    try:
        yield url
    finally:
        process.send_signal(STOP_SIGNAL)
        process.wait(30)
