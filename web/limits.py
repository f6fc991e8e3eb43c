"""How long the web tier waits on Redis and PostgreSQL, and what it does once they stop answering.

Every request runs inside a deadline of its kind (resilience.deadline): each Redis command,
each wait for a database connection and each statement ends by it, retries included, so a
frozen dependency costs a request its deadline at most and a 503 at once after that.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.settings import env_number
from resilience import deadline

READS = frozenset({"GET", "HEAD", "OPTIONS"})
# Of a request's deadline, what is kept for answering once a dependency gave up: the error
# handler, the JSON and the way out through the HTTP server.
ANSWER_SECONDS = 0.25


@dataclass(frozen=True)
class ServingLimits:
    read_seconds: float = 2.0  # a GET answers within this, in all
    write_seconds: float = 5.0  # a POST, PATCH or DELETE
    breaker_open_seconds: float = 1.0  # between probes of a dependency that timed out
    stale_seconds: float = 30.0  # the oldest answer served again while Redis does not answer
    stale_entries: int = 2000  # answers kept per process for that
    # Of the 2 threads of a web process (service.web_server), how many may wait on PostgreSQL:
    # the other always serves reads from Redis, whatever the database does.
    database_slots: int = 1

    def for_method(self, method: str) -> float:
        """What a request of `method` may spend waiting on its dependencies, in all."""
        promised = self.read_seconds if method in READS else self.write_seconds
        return max(promised - ANSWER_SECONDS, promised / 2)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServingLimits:
        env = os.environ if env is None else env
        default = cls()
        return cls(
            read_seconds=env_number(env, "MOVIEREC_READ_DEADLINE", default.read_seconds, float),
            write_seconds=env_number(env, "MOVIEREC_WRITE_DEADLINE", default.write_seconds, float),
            breaker_open_seconds=env_number(
                env, "MOVIEREC_BREAKER_OPEN_SECONDS", default.breaker_open_seconds, float
            ),
            stale_seconds=env_number(
                env, "MOVIEREC_STALE_SECONDS", default.stale_seconds, float, zero=True
            ),
            stale_entries=env_number(env, "MOVIEREC_STALE_ENTRIES", default.stale_entries, int),
            database_slots=env_number(env, "MOVIEREC_DATABASE_SLOTS", default.database_slots, int),
        )


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class RequestDeadlines:
    """WSGI middleware: the whole request, error handlers included, within its kind's deadline."""

    def __init__(self, app: WsgiApp, limits: ServingLimits) -> None:
        self.app = app
        self.limits = limits

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        with deadline.within(self.limits.for_method(environ.get("REQUEST_METHOD", "GET"))):
            return self.app(environ, start_response)
