"""Making sure a version is live: the cached one, else the newest complete folder, else train."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import redis

from cache import versions
from cache.publish import publish_version_dir
from cache.settings import Settings
from pipeline.settings import fetch_sample


def ensure_active(
    r: redis.Redis,
    settings: Settings,
    train: Callable[[Path], dict],
    say: Callable[[str], None],
) -> str:
    """The active version's id, publishing or training one first when there is none.

    `train(data_dir)` must publish what it trains and return the publish summary. With no data
    configured and no sample on disk, the sample is downloaded first (pipeline.settings).
    """
    active = versions.active_version(r)
    if active:
        say(f"serving cached version {active}")
        return active
    latest = settings.output.models.latest()
    if latest is None:
        data = settings.data_dir or fetch_sample(settings.out_dir, say)
        say(f"no model yet: training on {data} ...")
        summary = train(data)
    else:
        say(f"publishing {latest.version} ...")
        summary = publish_version_dir(r, latest)
    say(f"published {summary['version']}: {summary['users']} users")
    return summary["version"]
