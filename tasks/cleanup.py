"""Periodic removal of versions nobody can serve any more: in Redis and on disk."""

from __future__ import annotations

import shutil

from cache import versions
from cache.redis_client import get_redis
from cache.settings import get_settings
from pipeline.artifacts import ModelsFolder
from tasks.celery_app import TASK_CLEANUP, celery_app


def prune_version_dirs(models: ModelsFolder, protected: set[str], keep: int) -> list[str]:
    """Delete version folders beyond the newest `keep`, except the protected ones.

    Version ids begin with their UTC timestamp, so name order is age order. Each folder holds a
    full copy of the ratings, so without this the disk fills up one weekly retrain at a time.
    """
    folders = models.version_folders()
    doomed = [f for f in folders[: max(0, len(folders) - keep)] if f.version not in protected]
    for folder in doomed:
        shutil.rmtree(folder.path, ignore_errors=True)
    return [f.version for f in doomed]


@celery_app.task(name=TASK_CLEANUP)
def cleanup_versions() -> dict[str, list[str]]:
    """Retired versions go after the grace period; abandoned staging once no retrain can own it."""
    settings, r = get_settings(), get_redis()
    dropped = versions.cleanup(r, settings.grace_seconds, settings.job_deadline_seconds)
    pointers = versions.read_pointers(r)
    models = settings.output.models
    protected = {pointers.active, pointers.previous, *pointers.staging, *pointers.retired}
    protected.add(models.latest_id())
    removed = prune_version_dirs(models, protected - {None}, settings.keep_versions)
    return {"cache": dropped, "disk": removed}
