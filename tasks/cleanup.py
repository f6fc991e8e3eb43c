"""Periodic removal of versions nobody can serve any more: in Redis and on disk."""

from __future__ import annotations

import shutil
from pathlib import Path

from cache import versions
from cache.redis_client import get_redis
from cache.settings import get_settings
from tasks.celery_app import TASK_CLEANUP, celery_app


def prune_version_dirs(models_dir: Path, protected: set[str], keep: int) -> list[str]:
    """Delete version folders beyond the newest `keep`, except the protected ones.

    Version ids begin with their UTC timestamp, so name order is age order. Each folder holds a
    full copy of the ratings, so without this the disk fills up one weekly retrain at a time.
    """
    if not models_dir.is_dir():
        return []
    folders = sorted(p for p in models_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    doomed = [p for p in folders[: max(0, len(folders) - keep)] if p.name not in protected]
    for folder in doomed:
        shutil.rmtree(folder, ignore_errors=True)
    return [p.name for p in doomed]


@celery_app.task(name=TASK_CLEANUP)
def cleanup_versions() -> dict[str, list[str]]:
    """Retired versions go after the grace period; abandoned staging once no retrain can own it."""
    settings, r = get_settings(), get_redis()
    dropped = versions.cleanup(r, settings.grace_seconds, settings.lock_ttl_seconds)
    pointers = versions.read_pointers(r)
    protected = {pointers.active, pointers.previous, *pointers.staging, *pointers.retired}
    latest = settings.models_dir / "LATEST"
    if latest.is_file():
        protected.add(latest.read_text().strip())
    removed = prune_version_dirs(settings.models_dir, protected - {None}, settings.keep_versions)
    return {"cache": dropped, "disk": removed}
