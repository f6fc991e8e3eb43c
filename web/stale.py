"""Answers this web process gave recently, given again while Redis does not answer.

The live version is rewritten in place (refreshes, new movies), so an answer is kept at most
`max_age` seconds: after that, an erased user or a hidden movie is never served from here. A
stale answer says so: `"stale": true` in an object body, and an RFC 9211 Cache-Status header.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, NamedTuple

import redis
from flask import Response, g

CACHE_NAME = "movierec"


class Kept(NamedTuple):
    value: Any
    age: float  # seconds since it came from Redis


class StaleAnswers:
    """A bounded LRU of answers, each with the time it was read."""

    def __init__(self, max_age: float, max_entries: int, on_stale: Callable[[], None]) -> None:
        self.max_age = max_age
        self.max_entries = max_entries
        self._on_stale = on_stale
        self._lock = threading.Lock()
        self._kept: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()

    def answer(self, key: Hashable, read: Callable[[], Any]) -> Any:
        """`read()`, kept for later; when Redis fails, the answer kept under `key` if it is
        recent enough (marked stale on the response), else the error."""
        try:
            value = read()
        except redis.RedisError:
            kept = self._get(key)
            if kept is None:
                raise
            g.stale_age = kept.age
            self._on_stale()
            return _marked(kept.value)
        if value is not None and self.max_age > 0:
            self._put(key, value)
        return value

    def _put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._kept[key] = (time.monotonic(), value)
            self._kept.move_to_end(key)
            while len(self._kept) > self.max_entries:
                self._kept.popitem(last=False)

    def _get(self, key: Hashable) -> Kept | None:
        with self._lock:
            found = self._kept.get(key)
        if found is None:
            return None
        age = time.monotonic() - found[0]
        return Kept(found[1], age) if age <= self.max_age else None


def _marked(value: Any) -> Any:
    """Objects say they are stale in the body too; lists (a JSON array) only in the header."""
    return {**value, "stale": True} if isinstance(value, dict) else value


def add_cache_status(response: Response) -> Response:
    """RFC 9211: a hit, stale by its age (freshness ends when Redis stops answering)."""
    age = g.get("stale_age")
    if age is not None:
        response.headers["Cache-Status"] = (
            f'{CACHE_NAME}; hit; ttl={-round(age)}; detail="redis unavailable"'
        )
    return response
