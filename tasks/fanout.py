"""Splitting a retrain's users into contiguous id ranges, one chunk task each, in a chord."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from celery import Celery, chord

from pipeline.errors import ParameterError
from tasks.celery_app import TASK_PUBLISH, TASK_RELEASE_LOCK, TASK_USERS_CHUNK


class UserRange(NamedTuple):
    """Inclusive first and last user id of one chunk."""

    lo: int
    hi: int


def user_ranges(user_ids: Sequence[int] | np.ndarray, chunk_users: int) -> list[UserRange]:
    """Consecutive slices of at most `chunk_users` users."""
    if chunk_users <= 0:
        raise ParameterError("chunk_users must be positive")
    ids = np.unique(np.asarray(user_ids, dtype="int64"))
    return [
        UserRange(int(ids[start]), int(ids[min(start + chunk_users, len(ids)) - 1]))
        for start in range(0, len(ids), chunk_users)
    ]


def user_fanout(
    app: Celery, version: str, ranges: list[UserRange], n_users: int, job_id: str
) -> chord:
    """One chunk task per user range; publish runs only if all succeed, else the lock is freed."""
    header = [
        app.signature(TASK_USERS_CHUNK, args=(version, lo, hi, job_id), immutable=True)
        for lo, hi in ranges
    ]
    callback = app.signature(TASK_PUBLISH, args=(version, n_users, job_id))
    callback.set(link_error=[app.signature(TASK_RELEASE_LOCK, args=(job_id,), immutable=True)])
    return chord(header, callback)
