"""The worker's connection to the system of record, when the service has one."""

from __future__ import annotations

from cache.settings import get_settings
from db.database import Database, database

# A task whose database freezes fails within this, and Celery's retries or the pending sweep
# take its work up again. No statement of a task comes near it: snapshots go through ADBC.
TASK_CALL_SECONDS = 60.0


def worker_database() -> Database | None:
    """None when MOVIEREC_DATABASE_URL is unset: retrains read the data folder instead."""
    url = get_settings().database_url
    return database(url, TASK_CALL_SECONDS) if url else None
