"""What every backend of the store offers, its errors, and the counts /metrics shows of it.

Keys are `/`-separated paths below the store's root (`<version>/movies.parquet`); a backend
knows nothing of versions.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from prometheus_client import Counter

from pipeline.errors import MovierecError

# Registered by the scrape that reads them (web.metrics), not in the global registry.
OPERATIONS = Counter(
    "movierec_store_operations",
    "Calls to the version store, by operation and outcome (ok, missing, error).",
    ["operation", "outcome"],
    registry=None,
)
BYTES = Counter(
    "movierec_store_bytes",
    "Bytes moved to or from the version store, by direction (up, down).",
    ["direction"],
    registry=None,
)


class StoreUnavailable(MovierecError):
    """The store did not answer in time or refused the call: the caller answers 503 or fails
    its job, and may try again later."""


class StoreMissing(MovierecError, FileNotFoundError):
    """The store answered: there is no such object."""


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    modified: datetime


class Backend(Protocol):
    """The few calls the version store needs, each bounded by the store's timeouts."""

    url: str

    def put_file(self, key: str, path: Path) -> None: ...

    def put_bytes(self, key: str, data: bytes) -> None: ...

    def read_bytes(self, key: str) -> bytes:
        """Raises StoreMissing when there is no such object."""

    def chunks(self, key: str) -> Iterator[bytes]:
        """The object's bytes, streamed; raises StoreMissing when there is none."""

    def local_path(self, key: str) -> Path | None:
        """Where the object can be read in place, for a store on this host's disk."""

    def list(self, prefix: str) -> list[StoredObject]:
        """Every object whose key starts with `prefix/`."""

    def top_level(self) -> list[str]:
        """The folders at the root: the first component of every key that has more."""

    def delete(self, keys: list[str]) -> None: ...


# The same counts, taken by workers after each task for the web tier's /metrics (through Redis:
# a worker's own registry is scraped by nobody). Keys: ("operations", operation, outcome) and
# ("bytes", direction).
_untaken: collections.Counter[tuple[str, ...]] = collections.Counter()
_untaken_lock = threading.Lock()


def count(operation: str, outcome: str = "ok") -> None:
    OPERATIONS.labels(operation, outcome).inc()
    with _untaken_lock:
        _untaken["operations", operation, outcome] += 1


def take_counts() -> dict[tuple[str, ...], int]:
    """What this process counted since the last call."""
    with _untaken_lock:
        taken = dict(_untaken)
        _untaken.clear()
    return taken


@contextmanager
def guarded(
    operation: str, failures: tuple[type[BaseException], ...] = (OSError,)
) -> Iterator[None]:
    """Counts the call; a missing object is StoreMissing, any of `failures` StoreUnavailable,
    with the first line of the cause (obstore's messages go on for pages)."""
    try:
        yield
    except FileNotFoundError as error:
        count(operation, "missing")
        raise StoreMissing(_first_line(error)) from error
    except failures as error:
        count(operation, "error")
        raise StoreUnavailable(f"version store: {_first_line(error)}") from error
    count(operation)


def _first_line(error: BaseException) -> str:
    return (str(error).splitlines() or [type(error).__name__])[0]


def count_bytes(direction: str, n: int) -> None:
    BYTES.labels(direction).inc(n)
    with _untaken_lock:
        _untaken["bytes", direction] += n
