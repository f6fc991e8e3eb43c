"""Making sure a version is live: the cached one, else the store's newest complete, else train."""

from __future__ import annotations

from collections.abc import Callable

import redis

from cache import versions
from cache.publish import publish_stored
from cache.settings import Settings
from db.database import database
from db.erasure import erased_ids
from store.versions import open_store


def ensure_active(
    r: redis.Redis,
    settings: Settings,
    train: Callable[[], dict],
    say: Callable[[str], None],
) -> str:
    """The active version's id, publishing or training one first when there is none.

    `train()` must publish what it trains and return the publish summary.
    """
    active = versions.active_version(r)
    if active:
        say(f"serving cached version {active}")
        return active
    store = open_store(settings.store)
    latest = store.latest()
    if latest is None:
        say("no model yet: training ...")
        summary = train()
    else:
        say(f"publishing {latest} from {store.url} ...")
        url = settings.database_url
        summary = publish_stored(r, store, latest, erased_ids(database(url) if url else None))
    say(f"published {summary['version']}: {summary['users']} users")
    return summary["version"]
