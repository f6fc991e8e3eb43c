"""Which cached model version is live: staging, the atomic pointer flip, rollback and clean-up.

The flip and the rollback are Lua scripts so a reader sees either the old or the new pointer,
never a half-updated pair of active/previous.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import NamedTuple

import redis

from cache import keys
from pipeline.artifacts import check_version
from pipeline.errors import MovierecError

_FLIP = """
if redis.call('EXISTS', KEYS[5]) == 0 then
  return redis.error_reply('version ' .. ARGV[1] .. ' has no metadata in the cache')
end
if KEYS[6] and redis.call('GET', KEYS[6]) ~= ARGV[3] then
  return redis.error_reply('FENCED lock ' .. KEYS[6] .. ' is no longer held by ' .. ARGV[3])
end
local old = redis.call('GET', KEYS[1])
if old == ARGV[1] then
  return old
end
local prev = redis.call('GET', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
if old then
  redis.call('SET', KEYS[2], old)
  redis.call('ZREM', KEYS[4], old)
end
if prev and prev ~= ARGV[1] and prev ~= old then
  redis.call('ZADD', KEYS[4], ARGV[2], prev)
end
return old
"""

_ROLLBACK = """
local prev = redis.call('GET', KEYS[2])
if not prev then
  return redis.error_reply('there is no previous version to roll back to')
end
local cur = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], prev)
if cur then
  redis.call('SET', KEYS[2], cur)
else
  redis.call('DEL', KEYS[2])
end
return {prev, cur}
"""


class NoPreviousVersion(MovierecError):
    """Rollback was asked for but only one version was ever published."""


@dataclass(frozen=True)
class Pointers:
    active: str | None
    previous: str | None
    staging: list[str]
    retired: list[str]


def active_version(r: redis.Redis) -> str | None:
    return _text(r.get(keys.ACTIVE))


def read_pointers(r: redis.Redis) -> Pointers:
    pipe = r.pipeline(transaction=False)
    pipe.get(keys.ACTIVE)
    pipe.get(keys.PREVIOUS)
    pipe.zrange(keys.STAGING, 0, -1)
    pipe.zrange(keys.RETIRED, 0, -1)
    active, previous, staging, retired = pipe.execute()
    return Pointers(
        active=_text(active),
        previous=_text(previous),
        staging=[_text(v) for v in staging],
        retired=[_text(v) for v in retired],
    )


def mark_staging(r: redis.Redis, version: str, now: float | None = None) -> None:
    """Record when writing began, so an abandoned half-written version can be found and dropped."""
    check_version(version)
    r.zadd(keys.STAGING, {version: time.time() if now is None else now}, nx=True)


class Fence(NamedTuple):
    """A lock the flip requires its caller to hold: `key` must still hold `token`."""

    key: str
    token: str


class Fenced(MovierecError):
    """The caller's lock lapsed and may be another's now (a stalled worker): nothing flipped."""


def flip(
    r: redis.Redis, version: str, now: float | None = None, fence: Fence | None = None
) -> str | None:
    """Make `version` active in one step; the old active becomes previous. Returns the old one.

    With a `fence`, only while the caller still holds that lock, checked inside the same
    script: a worker that stalled past its lock's lifetime cannot publish over the job that
    took the lock since."""
    ns = keys.VersionKeys(version)
    stamp = time.time() if now is None else now
    names = [keys.ACTIVE, keys.PREVIOUS, keys.STAGING, keys.RETIRED, ns.meta]
    args = [version, repr(stamp)]
    if fence is not None:
        names.append(fence.key)
        args.append(fence.token)
    try:
        old = r.eval(_FLIP, len(names), *names, *args)
    except redis.ResponseError as error:
        if str(error).startswith("FENCED"):
            raise Fenced(str(error).removeprefix("FENCED ")) from None
        raise
    return _text(old)


class Swap(NamedTuple):
    active: str
    previous: str | None


def rollback(r: redis.Redis) -> Swap:
    """Swap active and previous; returns the pair as it is now."""
    try:
        now_active, now_previous = r.eval(_ROLLBACK, 2, keys.ACTIVE, keys.PREVIOUS)
    except redis.ResponseError as error:
        if "no previous version" in str(error):
            raise NoPreviousVersion(str(error)) from None
        raise
    return Swap(_text(now_active), _text(now_previous))


def drop_version(r: redis.Redis, version: str, batch: int = 500) -> int:
    """Delete every key of one version; returns how many were removed."""
    removed = 0
    batch_keys: list[bytes] = []
    for key in r.scan_iter(match=keys.VersionKeys(version).pattern, count=batch):
        batch_keys.append(key)
        if len(batch_keys) >= batch:
            removed += r.unlink(*batch_keys)
            batch_keys = []
    if batch_keys:
        removed += r.unlink(*batch_keys)
    return removed


def abandon(r: redis.Redis, version: str) -> int:
    """Drop what a failed publish staged, at once rather than when staging goes stale; a live
    version is never touched. Returns the keys removed."""
    if version in (active_version(r), _text(r.get(keys.PREVIOUS))):
        return 0
    removed = drop_version(r, version)
    r.zrem(keys.STAGING, version)
    return removed


def cleanup(
    r: redis.Redis, grace_seconds: float, stale_staging_seconds: float, now: float | None = None
) -> list[str]:
    """Drop versions retired longer than the grace period and staging left behind by dead runs."""
    stamp = time.time() if now is None else now
    live = {active_version(r), _text(r.get(keys.PREVIOUS))}
    dropped = []
    for registry, max_age in ((keys.RETIRED, grace_seconds), (keys.STAGING, stale_staging_seconds)):
        for raw in r.zrangebyscore(registry, "-inf", stamp - max_age):
            version = _text(raw)
            if version not in live:
                drop_version(r, version)
                dropped.append(version)
            r.zrem(registry, raw)
    return dropped


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value
