"""Making sure a version is live: the cached one, else the newest complete folder, else train."""

from __future__ import annotations

from collections.abc import Callable

import redis

from cache import versions
from cache.publish import publish_version_dir
from cache.settings import Settings
from service.errors import ServiceError


def ensure_active(
    r: redis.Redis, settings: Settings, train: Callable[[], dict], say: Callable[[str], None]
) -> str:
    """The active version's id, publishing or training one first when there is none.

    `train` must publish what it trains and return the publish summary.
    """
    active = versions.active_version(r)
    if active:
        say(f"serving cached version {active}")
        return active
    latest = settings.output.models.latest()
    if latest is None:
        if settings.data_dir is None or not settings.data_dir.is_dir():
            raise ServiceError(
                f"no model yet and no data to train on ({settings.data_dir}): "
                "pass --data DIR or set MOVIEREC_DATA"
            )
        say(f"no model yet: training on {settings.data_dir} ...")
        summary = train()
    else:
        say(f"publishing {latest.version} ...")
        summary = publish_version_dir(r, latest)
    say(f"published {summary['version']}: {summary['users']} users")
    return summary["version"]
