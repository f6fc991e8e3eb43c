"""The worker's connection to the system of record, when the service has one."""

from __future__ import annotations

from cache.settings import get_settings
from db.database import Database, database


def worker_database() -> Database | None:
    """None when MOVIEREC_DATABASE_URL is unset: retrains read the data folder instead."""
    url = get_settings().database_url
    return database(url) if url else None
