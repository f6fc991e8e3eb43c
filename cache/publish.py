"""Turn a finished version folder into the live cache version, and find such folders on disk."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import redis

from cache import versions
from cache.keys import VersionKeys
from cache.settings import Settings
from cache.writer import write_catalog, write_users
from pipeline.io import write_text
from tasks.user_chunks import FAVORITES, RECOMMENDATIONS

LATEST = "LATEST"
VERSION_FILES = (
    "metadata.json",
    "movies.parquet",
    "cluster_summary.json",
    "movie_similar.parquet",
    "popular.parquet",
    FAVORITES,
    RECOMMENDATIONS,
)


class PublishError(RuntimeError):
    """The staged version is incomplete, so the pointer was not moved."""


def ensure_active(
    r: redis.Redis, settings: Settings, train: Callable[[], dict], say: Callable[[str], None]
) -> str:
    """Make sure a version is live: the cached one, else the newest complete folder, else train.

    `train` must publish what it trains and return the publish summary.
    """
    active = versions.active_version(r)
    if active:
        say(f"serving cached version {active}")
        return active
    latest = latest_version_dir(settings.models_dir)
    if latest is None:
        if settings.data_dir is None or not settings.data_dir.is_dir():
            raise FileNotFoundError(
                f"no model yet and no data to train on ({settings.data_dir}): "
                "pass --data DIR or set MOVIEREC_DATA"
            )
        say(f"no model yet: training on {settings.data_dir} ...")
        summary = train()
    else:
        say(f"publishing {latest} ...")
        summary = publish_version_dir(r, latest)
    say(f"published {summary['version']}: {summary['users']} users")
    return summary["version"]


def publish_version_dir(r: redis.Redis, version_dir: Path) -> dict:
    """Write a complete offline version into Redis, then make it active."""
    missing = missing_files(version_dir)
    if missing:
        raise PublishError(f"{version_dir}: missing {', '.join(missing)}")
    version = version_dir.name
    versions.mark_staging(r, version)
    favorites = pd.read_parquet(version_dir / FAVORITES)
    recommendations = pd.read_parquet(version_dir / RECOMMENDATIONS)
    write_catalog(r, version, version_dir, n_users=len(favorites))
    write_users(r, version, favorites, recommendations)
    return finish_publish(r, version, expected_users=len(favorites))


def finish_publish(r: redis.Redis, version: str, expected_users: int) -> dict:
    """Check every user landed in the staged namespace, then flip the pointer to it."""
    ns = VersionKeys(version)
    cached = r.hlen(ns.users)
    if cached != expected_users:
        raise PublishError(f"version {version}: {cached} users cached, expected {expected_users}")
    previous = versions.flip(r, version)
    return {
        "version": version,
        "previous": previous,
        "users": cached,
        "bytes_per_user": bytes_per_user(r, ns.users, cached),
        "published_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def bytes_per_user(r: redis.Redis, users_key: str, n_users: int) -> float | None:
    """Redis's own accounting of the users hash, per user (None where MEMORY is unsupported)."""
    try:
        used = r.memory_usage(users_key, samples=0)
    except redis.ResponseError:
        return None
    return round(used / n_users, 1) if used and n_users else None


def latest_version_dir(models_dir: Path) -> Path | None:
    """The newest complete version folder named by LATEST, if there is one."""
    marker = models_dir / LATEST
    if not marker.is_file():
        return None
    version_dir = models_dir / marker.read_text().strip()
    return None if missing_files(version_dir) else version_dir


def missing_files(version_dir: Path) -> list[str]:
    return [name for name in VERSION_FILES if not (version_dir / name).is_file()]


def write_latest(models_dir: Path, version: str) -> None:
    write_text(version + "\n", models_dir / LATEST)
