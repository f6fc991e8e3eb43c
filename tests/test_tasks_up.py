"""`movierec up`'s first training gives up clearly instead of waiting forever (no processes)."""

from __future__ import annotations

import pytest

from service import up
from service.errors import ServiceError
from tasks.jobs import Submission


class Children:
    def check(self) -> None:
        """Every child is alive."""


def test_a_refused_submission_is_an_error_naming_the_running_job():
    with pytest.raises(ServiceError, match="retrain job-9 is running"):
        up.started_job(Submission(accepted=False, job_id="job-9"))
    with pytest.raises(ServiceError, match="could not start the first training"):
        up.started_job(Submission(accepted=False, job_id=None))
    assert up.started_job(Submission(accepted=True, job_id="job-1")) == "job-1"


def test_following_a_job_that_never_ends_stops_at_the_deadline(monkeypatch):
    monkeypatch.setattr(up, "job_status", lambda app, r, job_id: None)  # never even started
    with pytest.raises(TimeoutError, match="job-1"):
        up._follow(None, None, "job-1", Children(), timeout=0)


def test_following_returns_the_publish_summary(monkeypatch):
    summary = {"version": "v", "users": 3}
    status = {"state": "SUCCESS", "result": summary, "progress": None}
    monkeypatch.setattr(up, "job_status", lambda app, r, job_id: status)
    assert up._follow(None, None, "job-1", Children(), timeout=0) == summary
