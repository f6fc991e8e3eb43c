"""The newest jobs this service started, from the index `tasks.jobs.record_job` keeps."""

from __future__ import annotations

import redis
from celery import Celery

from tasks import jobs

RECENT = 10


def recent_jobs(app: Celery, r: redis.Redis, limit: int = RECENT) -> list[dict]:
    """The newest `limit` jobs, newest first: `job_status` plus `submitted_at` (Unix time)."""
    found = []
    for job in jobs.recent_jobs(r, limit):
        status = jobs.job_status(app, r, job.job_id)
        if status is not None:  # its record expired
            found.append({**status, "submitted_at": job.submitted_at})
    return found
