"""On-demand recomputation of one user's favorite cluster and list in the active version."""

from __future__ import annotations

from celery.utils.log import get_task_logger

from cache import versions
from cache.reader import NoActiveVersion
from cache.redis_client import get_redis
from cache.settings import get_settings
from cache.writer import write_users
from pipeline.errors import MovierecError
from pipeline.users import read_user_ratings, recommend_users
from tasks.celery_app import TASK_REFRESH_USER, celery_app, time_limits
from tasks.version_access import catalog_for, version_folder

log = get_task_logger(__name__)


class UnknownUser(MovierecError, LookupError):
    """The active version's ratings have no row for this user."""


@celery_app.task(name=TASK_REFRESH_USER, **time_limits(get_settings().chunk_time_limit))
def refresh_user(user_id: int) -> dict:
    """Idempotent: recomputing from the same version's ratings writes the same entry again."""
    r = get_redis()
    version = versions.active_version(r)
    if version is None:
        raise NoActiveVersion("no model version is active")
    folder = version_folder(version)
    ratings = read_user_ratings(folder, user_id, user_id)
    if ratings.empty:
        raise UnknownUser(f"user {user_id} has no ratings in version {version}")
    lists = recommend_users(ratings, catalog_for(folder))
    write_users(r, version, lists)
    favorite = int(lists.favorites["favorite_cluster"].iloc[0])
    log.info("refreshed user %d in %s: favorite cluster %d", user_id, version, favorite)
    return {"user_id": user_id, "version": version, "favorite_cluster": favorite}
