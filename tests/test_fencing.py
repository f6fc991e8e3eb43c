"""A worker that stalled past its retrain lock's lifetime cannot publish, nor take the lock
again once its job has ended."""

from __future__ import annotations

import fakeredis
import pytest

from cache import keys, versions
from cache.publish import PublishError, finish_publish, publish_version_dir
from cache.settings import Settings
from cache.writer import write_catalog, write_users
from tasks.jobs import JobLost, hold_retrain_lock, release_retrain_lock
from tests.serving_helpers import fake_version
from tests.test_web_api import VERSION


def test_a_flip_fenced_by_a_lock_the_publisher_lost_publishes_nothing(tmp_path):
    r = fakeredis.FakeRedis()
    publish_version_dir(r, fake_version(tmp_path / "a", VERSION))
    other = "20260202T000000Z-bbbb"
    staged = fake_version(tmp_path / "b", other)
    lists = staged.read_users()
    write_catalog(r, staged, n_users=len(lists.favorites))
    write_users(r, other, lists)
    r.set(keys.RETRAIN_LOCK, "the-newer-job")
    stale = versions.Fence(keys.RETRAIN_LOCK, "a-stalled-job")
    with pytest.raises(PublishError, match="no longer held"):
        finish_publish(r, other, len(lists.favorites), stale)
    assert versions.active_version(r) == VERSION
    holder = versions.Fence(keys.RETRAIN_LOCK, "the-newer-job")
    finish_publish(r, other, len(lists.favorites), holder)
    assert versions.active_version(r) == other


def test_a_job_that_ended_cannot_take_the_lock_again():
    r, settings = fakeredis.FakeRedis(), Settings.from_env({})
    assert hold_retrain_lock(r, settings, "job-1")
    release_retrain_lock(r, settings, "job-1")
    with pytest.raises(JobLost):  # a chunk of it redelivered after the publish
        hold_retrain_lock(r, settings, "job-1")
    assert r.get(keys.RETRAIN_LOCK) is None
