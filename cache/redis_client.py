"""One Redis connection pool per URL and purpose, shared by everything in a process.

Every connection keeps to the calling thread's deadline (resilience.deadline) and, in the web
tier, to the Redis circuit breaker: a frozen server costs one caller its deadline, and the
others fail at once until a probe finds it answering again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.connection import SENTINEL
from redis.retry import Retry

from cache.settings import get_settings
from resilience import deadline
from resilience.breaker import CircuitBreaker, judged


class CircuitOpen(redis.RedisError):
    """Redis timed out recently: calls fail at once until a probe finds it answering. Not a
    ConnectionError, which the client would retry."""


class DeadlineExceeded(redis.TimeoutError):
    """The request's deadline passed before this call could be sent."""


class GuardedConnection(redis.Connection):
    """A connection whose every wait ends by the thread's deadline, and which reports timeouts
    to (and asks leave of) its breaker when it has one."""

    def __init__(self, *args: Any, breaker: CircuitBreaker | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.breaker = breaker
        self._connect_timeout = self.socket_connect_timeout

    def connect_check_health(
        self, check_health: bool = True, retry_socket_connect: bool = True
    ) -> None:
        if self._sock:
            return
        self._admit()  # a frozen server's full backlog holds a connect as long as a command
        self.socket_connect_timeout = deadline.capped(self._connect_timeout)
        self._judged(
            lambda: super(GuardedConnection, self).connect_check_health(
                check_health, retry_socket_connect
            ),
            self.socket_connect_timeout,
        )

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        left = deadline.remaining()
        if left is not None and left <= 0:
            raise DeadlineExceeded("the request's deadline passed before Redis was asked")
        self._admit()
        waits = deadline.capped(self.socket_timeout)
        if self._sock is not None and left is not None:
            self._sock.settimeout(waits)
        self._judged(
            lambda: super(GuardedConnection, self).send_packed_command(command, check_health),
            waits,
        )

    def read_response(
        self,
        disable_decoding: bool = False,
        *,
        timeout: float | object = SENTINEL,
        disconnect_on_error: bool = True,
        push_request: bool = False,
    ) -> Any:
        if timeout is SENTINEL and deadline.remaining() is not None:
            timeout = deadline.capped(self.socket_timeout)
        response = self._judged(
            lambda: super(GuardedConnection, self).read_response(
                disable_decoding,
                timeout=timeout,
                disconnect_on_error=disconnect_on_error,
                push_request=push_request,
            ),
            self.socket_timeout if timeout is SENTINEL else timeout,  # type: ignore[arg-type]
        )
        if self.breaker is not None:
            self.breaker.succeeded()
        return response

    def _admit(self) -> None:
        if self.breaker is not None and not self.breaker.admit():
            raise CircuitOpen(f"Redis did not answer in time; failing fast ({self.host})")

    def _judged(self, call: Callable[[], Any], waits: float | None) -> Any:
        """`call()`, telling the breaker when it timed out after waiting `waits` seconds."""
        try:
            return call()
        except redis.TimeoutError as error:
            if getattr(error, "judged", False):  # a handshake's read, inside a connect
                raise
            error.judged = True  # type: ignore[attr-defined]
            if self.breaker is not None and judged(waits):
                self.breaker.timed_out()
            raise


@dataclass(frozen=True)
class ClientProfile:
    timeout: float
    retries: int
    breaker: CircuitBreaker | None = None


# Serving answers fast or fails fast (a 503 beats a hung request): one retry, for a connection
# a restarted server closed, and the request's deadline over all of it (the app adds a breaker).
WEB = ClientProfile(timeout=2.0, retries=1)
# Workers write large pipelines and can wait out a busy or restarting server, not a frozen one:
# a task whose Redis freezes fails within 10 s, and Celery retries or fails it.
WORKER = ClientProfile(timeout=10.0, retries=2)


def connection_options(profile: ClientProfile) -> dict[str, Any]:
    """The options of a pool of guarded connections, for redis-py and Celery's result backend."""
    return {
        "connection_class": GuardedConnection,
        "breaker": profile.breaker,
        "socket_timeout": profile.timeout,
        "socket_connect_timeout": min(profile.timeout, 5.0),
        "health_check_interval": 30,
    }


@cache
def redis_from_url(url: str, profile: ClientProfile = WORKER) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        # A refused or reset connection (a restarted server) is worth another try at once; a
        # timeout is not: the server is slow or frozen, and the caller's deadline is spent.
        retry=Retry(
            ExponentialBackoff(cap=1.0, base=0.05),
            profile.retries,
            supported_errors=(redis.ConnectionError,),
        ),
        **connection_options(profile),
    )


def get_redis(profile: ClientProfile = WORKER) -> redis.Redis:
    return redis_from_url(get_settings().broker_url, profile)
