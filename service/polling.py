"""Waiting for something to happen, with a deadline: the one loop every start-up step uses."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from service.errors import WaitTimeout

T = TypeVar("T")


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
