"""Jobs: start a retrain (one at a time) and follow any job's state and progress."""

from __future__ import annotations

import re

from flask import Blueprint, jsonify, url_for

from tasks.jobs import job_status, submit_retrain
from web.auth import require_token
from web.errors import ApiError
from web.state import celery, redis_client

bp = Blueprint("jobs", __name__)
JOB_ID = re.compile(r"[A-Za-z0-9-]{1,64}")


@bp.post("/jobs/retrain")
@require_token
def retrain():
    submission = submit_retrain(celery(), redis_client())
    status_url = url_for("jobs.job", job_id=submission.job_id) if submission.job_id else None
    if not submission.accepted:
        raise ApiError(
            409, "a retrain is already running", job_id=submission.job_id, status_url=status_url
        )
    body = {"job_id": submission.job_id, "status_url": status_url}
    return jsonify(body), 202, {"Location": status_url}


@bp.get("/jobs/<job_id>")
def job(job_id: str):
    found = job_status(celery(), redis_client(), job_id) if JOB_ID.fullmatch(job_id) else None
    if found is None:
        raise ApiError(404, "Job not found")
    return jsonify(found)
