"""Recomputing one user's favorite cluster and list in the active version, after their ratings
changed (or on demand): the same code and result as the batch.

At most one refresh per user runs at a time (a per-user lock; a second one retries shortly
and stays the queued one meanwhile), and each reads the user's ratings after clearing the
queued mark, so it sees every write that did not queue a refresh of its own. With a database
the ratings are its current ones; without, the active version's.
"""

from __future__ import annotations

import pandas as pd
import redis
from celery import Task
from celery.exceptions import Ignore
from celery.utils.log import get_task_logger

from cache import keys, versions
from cache.lock import TokenLock
from cache.reader import NoActiveVersion
from cache.redis_client import get_redis
from cache.settings import get_settings
from cache.writer import delete_user, write_users
from db.changes import mark_refreshed, pending
from db.erasure import UserErased, refuse_if_erased
from db.snapshot import user_ratings
from pipeline.artifacts import VersionFolder
from pipeline.errors import MovierecError
from pipeline.lists.users import read_user_ratings, recommend_users
from tasks.celery_app import TASK_REFRESH_PENDING, TASK_REFRESH_USER, celery_app, time_limits
from tasks.database_access import worker_database
from tasks.jobs import submit_refresh_user
from tasks.version_access import catalog_for, version_folder

log = get_task_logger(__name__)
LOCK_SECONDS = 60  # far beyond one refresh (tens of milliseconds); frees a dead worker's lock
RETRY_SECONDS = 0.05
SWEEP_AFTER_SECONDS = 10.0  # a younger change still has its own refresh on the way
SWEEP_BATCH = 1000


class UnknownUser(MovierecError, LookupError):
    """The active version's ratings have no row for this user."""


@celery_app.task(
    bind=True,
    name=TASK_REFRESH_USER,
    max_retries=None,
    **time_limits(get_settings().chunk_time_limit),
)
def refresh_user(self: Task, user_id: int) -> dict:
    """Idempotent: recomputing from the same ratings writes the same entry again."""
    r = get_redis()
    lock = TokenLock(r, keys.refresh_lock_key(user_id), LOCK_SECONDS)
    if not lock.acquire(self.request.id):  # still queued: writes meanwhile join this refresh
        raise self.retry(countdown=RETRY_SECONDS)
    try:
        r.delete(keys.refresh_queued_key(user_id))  # a write from now on queues another
        return _refresh(r, user_id)
    except UserErased:  # queued before the erasure: its record and state name the user
        r.delete(keys.job_key(self.request.id), keys.celery_result_key(self.request.id))
        raise Ignore() from None  # Celery stores no result for it either
    finally:
        lock.release(self.request.id)


def _refresh(r: redis.Redis, user_id: int) -> dict:
    version = versions.active_version(r)
    if version is None:
        raise NoActiveVersion("no model version is active")
    db = worker_database()
    names = VersionFolder.CATALOG if db else VersionFolder.CATALOG + VersionFolder.TRAINING_RATINGS
    folder = version_folder(version, names)
    if db is None:
        ratings = read_user_ratings(folder, user_id, user_id)
        if ratings.empty:
            raise UnknownUser(f"user {user_id} has no ratings in version {version}")
        result = _write_entry(r, version, user_id, ratings, folder)
    else:
        with db.connection() as conn:
            refuse_if_erased(conn, user_id)
            ratings, change = user_ratings(conn, user_id)
            result = _write_entry(r, version, user_id, ratings, folder)
            if change is not None:
                mark_refreshed(conn, user_id, change)
    log.info("refreshed user %d in %s: %s", user_id, version, result)
    return {"user_id": user_id, "version": version, **result}


def _write_entry(
    r: redis.Redis, version: str, user_id: int, ratings: pd.DataFrame, folder: VersionFolder
) -> dict:
    lists = recommend_users(ratings, catalog_for(folder))
    if lists.favorites.empty:  # no ratings left, or only of movies newer than the version
        delete_user(r, version, user_id)
        return {"favorite_cluster": None, "ratings": len(ratings)}
    write_users(r, version, lists)
    favorite = int(lists.favorites["favorite_cluster"].iloc[0])
    return {"favorite_cluster": favorite, "ratings": len(ratings)}


@celery_app.task(name=TASK_REFRESH_PENDING)
def refresh_pending() -> dict:
    """Queue refreshes that a write could not queue (Redis was down) or that were lost."""
    db = worker_database()
    if db is None:
        return {"queued": 0}
    with db.connection() as conn:
        users = pending(conn, SWEEP_AFTER_SECONDS, SWEEP_BATCH)
    r = get_redis()
    for user_id in users:
        submit_refresh_user(celery_app, r, user_id)
    return {"queued": len(users)}
