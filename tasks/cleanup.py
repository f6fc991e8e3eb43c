"""Periodic removal of versions nobody can serve any more: in Redis, in the store, on this host."""

from __future__ import annotations

from datetime import UTC, datetime

from cache import versions
from cache.redis_client import get_redis
from cache.settings import get_settings, get_store
from tasks.celery_app import TASK_CLEANUP, celery_app


@celery_app.task(name=TASK_CLEANUP)
def cleanup_versions() -> dict[str, list[str]]:
    """Retired versions go after the grace period; abandoned staging once no retrain can own it.

    In the store, complete versions beyond the newest `keep_versions` go (never one Redis still
    names), and unfinished ones once nothing wrote to them for longer than a retrain may run.
    Each version holds a full copy of the ratings, so without this the store fills up one
    weekly retrain at a time.
    """
    settings, r, store = get_settings(), get_redis(), get_store()
    dropped = versions.cleanup(r, settings.grace_seconds, settings.job_deadline_seconds)
    pointers = versions.read_pointers(r)
    protected = {pointers.active, pointers.previous, *pointers.staging, *pointers.retired}
    protected.add(store.latest())
    removed = store.prune(
        protected - {None}, settings.keep_versions, settings.job_deadline_seconds, datetime.now(UTC)
    )
    host = store.prune_host_cache(set(store.version_ids()), settings.job_deadline_seconds)
    return {"cache": dropped, "store": removed, "host_cache": host}
