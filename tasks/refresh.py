"""On-demand recomputation of one user's favorite cluster and list in the active version."""

from __future__ import annotations

from celery.utils.log import get_task_logger

from cache import versions
from cache.redis_client import get_redis
from cache.settings import soft_limit
from cache.writer import write_users
from pipeline.users import read_user_ratings, recommend_users
from tasks.celery_app import TASK_REFRESH_USER, celery_app
from tasks.retrain import SETTINGS, catalog_for, version_dir

log = get_task_logger(__name__)


class UnknownUser(LookupError):
    """The active version's ratings have no row for this user."""


@celery_app.task(
    name=TASK_REFRESH_USER,
    time_limit=SETTINGS.chunk_time_limit,
    soft_time_limit=soft_limit(SETTINGS.chunk_time_limit),
)
def refresh_user(user_id: int) -> dict:
    """Idempotent: recomputing from the same version's ratings writes the same entry again."""
    r = get_redis()
    version = versions.active_version(r)
    if version is None:
        raise LookupError("no model version is active")
    folder = version_dir(version)
    ratings = read_user_ratings(folder, user_id, user_id)
    if ratings.empty:
        raise UnknownUser(f"user {user_id} has no ratings in version {version}")
    favorites, recs = recommend_users(ratings, catalog_for(str(folder)))
    write_users(r, version, favorites, recs)
    favorite = int(favorites["favorite_cluster"].iloc[0])
    log.info("refreshed user %d in %s: favorite cluster %d", user_id, version, favorite)
    return {"user_id": user_id, "version": version, "favorite_cluster": favorite}
