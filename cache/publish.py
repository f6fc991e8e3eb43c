"""Turn a finished version folder into the live cache version: write it, check it, flip."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import redis
from pyarrow import ArrowException

from cache import versions
from cache.erasure import drop_users
from cache.keys import VersionKeys
from cache.writer import write_catalog, write_users
from pipeline.artifacts import COMPLETE, VersionFolder
from pipeline.errors import MovierecError
from store.versions import VersionNotReady, VersionStore


class PublishError(MovierecError):
    """The version could not be staged whole, so the pointer was not moved (and what was
    staged is dropped)."""


def publish_stored(
    r: redis.Redis, store: VersionStore, version: str, erased: Sequence[int] = ()
) -> dict:
    """Fetch a complete version from the store (onto this host, if it is remote), publish it
    without the `erased` users (it may predate their erasure)."""
    try:
        folder = store.fetch(version, VersionFolder.SERVED + VersionFolder.USER_FILES, COMPLETE)
    except VersionNotReady as error:
        raise PublishError(str(error)) from None
    return publish_version_dir(r, folder, erased)


def publish_version_dir(r: redis.Redis, folder: VersionFolder, erased: Sequence[int] = ()) -> dict:
    """Write a complete offline version into Redis, then make it active."""
    missing = folder.missing()
    if missing:
        raise PublishError(f"{folder.path}: missing {', '.join(missing)}")
    versions.mark_staging(r, folder.version)
    try:
        lists = folder.read_users()
        write_catalog(r, folder, n_users=len(lists.favorites))
        write_users(r, folder.version, lists)
    except (OSError, ArrowException, ValueError) as error:
        versions.abandon(r, folder.version)
        raise PublishError(f"{folder.path}: a file cannot be read ({error})") from None
    except redis.ResponseError as error:  # e.g. out of memory under noeviction
        versions.abandon(r, folder.version)
        raise PublishError(f"Redis refused version {folder.version}: {error}") from None
    return finish_publish(r, folder.version, len(lists.favorites), erased=erased)


def finish_publish(
    r: redis.Redis,
    version: str,
    expected_users: int,
    fence: versions.Fence | None = None,
    erased: Sequence[int] = (),
) -> dict:
    """Check every user landed in the staged namespace, take the `erased` users out of it, then
    flip the pointer to it (only while the caller holds the `fence` lock, when given). A user
    erased after `erased` was read is taken out of every version held by the erasure itself."""
    ns = VersionKeys(version)
    cached = r.hlen(ns.users)
    if cached != expected_users:
        raise PublishError(f"version {version}: {cached} users cached, expected {expected_users}")
    cached -= drop_users(r, version, erased)
    try:
        previous = versions.flip(r, version, fence=fence)
    except versions.Fenced as error:
        raise PublishError(f"version {version} not published: {error}") from None
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
