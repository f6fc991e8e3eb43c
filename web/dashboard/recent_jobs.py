"""The newest jobs this service started, found by their records in Redis.

Job records expire with their results, so few exist at a time; the scan still stops after
`SCAN_LIMIT` of them, so a burst of rating writes (one refresh job each) cannot slow a page.
"""

from __future__ import annotations

from datetime import UTC, datetime

import redis
from celery import Celery

from cache import keys
from tasks.jobs import job_status

RECENT = 10
SCAN_LIMIT = 5000
_RECORD_PREFIX = keys.job_key("")


def recent_jobs(app: Celery, r: redis.Redis, limit: int = RECENT) -> list[dict]:
    """The newest `limit` jobs, newest first: `job_status` plus `submitted` (UTC, ISO 8601)."""
    ids = []
    for key in r.scan_iter(match=keys.job_key("*"), count=500):
        job_id = key.decode()[len(_RECORD_PREFIX) :]
        if ":" not in job_id:  # not one of a job's side keys (e.g. its finished chunks)
            ids.append(job_id)
        if len(ids) >= SCAN_LIMIT:
            break
    pipe = r.pipeline(transaction=False)
    for job_id in ids:
        pipe.hget(keys.job_key(job_id), "submitted_at")
    submitted = {job_id: float(at) for job_id, at in zip(ids, pipe.execute(), strict=True) if at}
    newest = sorted(submitted, key=submitted.__getitem__, reverse=True)[:limit]
    jobs = []
    for job_id in newest:
        status = job_status(app, r, job_id)
        if status is not None:  # expired since the scan
            at = datetime.fromtimestamp(submitted[job_id], UTC)
            jobs.append({**status, "submitted": at.isoformat(timespec="seconds")})
    return jobs
