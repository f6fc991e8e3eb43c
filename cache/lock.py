"""A Redis lock whose token is the job id: one retrain at a time, and the holder is discoverable.

Release and extension check the token inside Lua, so a job whose lock already expired can never
free or prolong the lock a newer job has taken since.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import redis

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


class TokenLock:
    def __init__(self, r: redis.Redis, key: str, ttl_seconds: float) -> None:
        self.r = r
        self.key = key
        self.ttl_ms = int(ttl_seconds * 1000)

    def acquire(self, token: str) -> bool:
        """Take the lock for `token`; true also when `token` already holds it (a redelivery)."""
        return self.take(token) or self.extend(token)

    def take(self, token: str) -> bool:
        """Take the lock for `token` only if nobody holds it: one round trip, for a fresh token."""
        return bool(self.r.set(self.key, token, nx=True, px=self.ttl_ms))

    def holder(self) -> str | None:
        value = self.r.get(self.key)
        return value.decode() if isinstance(value, bytes) else value

    def extend(self, token: str) -> bool:
        return bool(self.r.eval(_EXTEND, 1, self.key, token, self.ttl_ms))

    def release(self, token: str) -> bool:
        return bool(self.r.eval(_RELEASE, 1, self.key, token))


class Heartbeat:
    """Renews a lock from a background thread while a task runs, so the lock's TTL can be short:
    when the process dies the renewals stop and the lock frees within one TTL.

    `renew()` returns False once the lock is no longer the holder's; the beat stops then.
    """

    def __init__(self, renew: Callable[[], bool], every_seconds: float) -> None:
        self._renew = renew
        self._every = every_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lock-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                if not self._renew():
                    return
            except redis.RedisError:  # a blip: the next beat tries again, well within the TTL
                continue
