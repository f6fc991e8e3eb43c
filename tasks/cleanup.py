"""Periodic removal of cached versions that are neither active nor previous."""

from __future__ import annotations

from tasks import versions
from tasks.celery_app import TASK_CLEANUP, celery_app
from tasks.redis_client import get_redis
from tasks.settings import get_settings


@celery_app.task(name=TASK_CLEANUP)
def cleanup_versions() -> list[str]:
    """Retired versions go after the grace period; abandoned staging once no retrain can own it."""
    settings = get_settings()
    return versions.cleanup(get_redis(), settings.grace_seconds, settings.lock_ttl_seconds)
