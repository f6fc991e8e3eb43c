"""Waiting for something to happen, with a deadline: the one loop every start-up step uses, and
the wait for a server just started."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from service.errors import ServiceError, WaitTimeout
from service.urls import without_password

T = TypeVar("T")
LOG_TAIL = 2000  # characters of a server's log in the error when it does not come up


def wait_until(
    check: Callable[[], T | None],
    timeout: float,
    interval: float,
    timeout_message: Callable[[], str],
) -> T:
    """Call `check` every `interval` seconds until it returns a value other than None.

    `check` may raise to stop early (a child died). After `timeout` seconds: WaitTimeout with
    `timeout_message()`, built only then so it can include what went wrong (a log's tail).
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise WaitTimeout(timeout_message())
        time.sleep(interval)


def wait_for_server(
    name: str,
    url: str,
    answers: Callable[[], bool],
    alive: Callable[[], bool],
    timeout: float,
    log: Path | None = None,
) -> None:
    """Until `answers()`; fail early, with the server's log, once `alive()` says it has died.

    The error names the server's URL without its password: it is printed, and may be logged.
    """

    def failure() -> str:
        tail = log.read_text(errors="replace")[-LOG_TAIL:] if log and log.is_file() else ""
        return f"{name} did not come up at {without_password(url)}\n{tail}"

    def answered() -> bool | None:
        if answers():
            return True
        if not alive():
            raise ServiceError(failure())
        return None

    wait_until(answered, timeout, 0.05, failure)
