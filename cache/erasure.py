"""Taking users out of Redis: their entry in every version held (live, previous, staged or
retired), and for an erased user also the refresh marks and the records of their refresh jobs.

Each step is idempotent, so an erasure cut short by a Redis failure is finished by its retry.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import redis

from cache import keys
from cache.keys import VersionKeys

BATCH = 1000


def versions_held(r: redis.Redis) -> list[str]:
    """Every version with users in Redis, whatever its state."""
    suffix = f":{keys.USERS}"
    found = r.scan_iter(match=f"{keys.VERSIONS}*{suffix}", count=BATCH)
    return sorted({key.decode()[len(keys.VERSIONS) : -len(suffix)] for key in found})


def drop_users(r: redis.Redis, version: str, user_ids: Sequence[int]) -> int:
    """Remove the users' entries from one version; returns how many were there."""
    removed = 0
    for start in range(0, len(user_ids), BATCH):
        removed += r.hdel(VersionKeys(version).users, *user_ids[start : start + BATCH])
    return removed


def forget_user(r: redis.Redis, user_id: int) -> int:
    """Every key and entry that names the user; returns the version entries removed."""
    removed = sum(drop_users(r, version, [user_id]) for version in versions_held(r))
    r.delete(keys.refresh_queued_key(user_id), keys.refresh_lock_key(user_id))
    jobs = list(_refresh_jobs_of(r, user_id))
    if jobs:
        pipe = r.pipeline(transaction=False)
        for job_id in jobs:
            pipe.delete(keys.job_key(job_id), keys.celery_result_key(job_id))
        pipe.zrem(keys.JOBS, *jobs)
        pipe.execute()
    return removed


def _refresh_jobs_of(r: redis.Redis, user_id: int) -> Iterable[str]:
    """Job ids whose record names the user (refreshes), scanning every job record kept."""
    batch: list[bytes] = []
    for key in r.scan_iter(match=keys.job_pattern(), count=BATCH, _type="hash"):
        batch.append(key)
        if len(batch) == BATCH:
            yield from _matching(r, batch, user_id)
            batch = []
    yield from _matching(r, batch, user_id)


def _matching(r: redis.Redis, job_keys: list[bytes], user_id: int) -> list[str]:
    pipe = r.pipeline(transaction=False)
    for key in job_keys:
        pipe.hget(key, "user_id")
    named = pipe.execute()
    prefix, wanted = len(keys.job_key("")), str(user_id).encode()
    pairs = zip(job_keys, named, strict=True)
    return [key.decode()[prefix:] for key, user in pairs if user == wanted]
