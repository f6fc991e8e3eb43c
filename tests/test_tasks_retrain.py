"""The retrain task chain's guards against lost locks, leaks and redelivery (fakeredis, eager)."""

from __future__ import annotations

import fakeredis
import pytest

from tasks import retrain as retrain_module
from tasks.jobs import retrain_lock
from tasks.settings import get_settings

JOB = "job-1"


@pytest.fixture
def r(monkeypatch) -> fakeredis.FakeRedis:
    server = fakeredis.FakeRedis()
    monkeypatch.setattr(retrain_module, "get_redis", lambda: server)
    return server


@pytest.fixture
def lock(r):
    return retrain_lock(r, get_settings())


def test_a_failed_hand_off_to_the_chord_releases_the_lock(r, lock, monkeypatch):
    def broken_replace(work):
        raise ConnectionError("broker down")

    monkeypatch.setattr(retrain_module, "_train_and_stage", lambda task, r, job_id: "chord")
    monkeypatch.setattr(retrain_module.retrain, "replace", broken_replace)
    assert lock.acquire(JOB)
    result = retrain_module.retrain.apply(task_id=JOB)
    assert isinstance(result.result, ConnectionError)
    assert lock.holder() is None
