"""Submitting jobs: a failed send takes back only its own mark (fakeredis, no broker)."""

from __future__ import annotations

from collections.abc import Callable

import fakeredis
import pytest
from kombu.exceptions import OperationalError

from cache import keys
from tasks.jobs import submit_refresh_user, submit_retrain

USER = 7
LATER_JOB = b"later-job"

Submit = Callable[[object, fakeredis.FakeRedis], object]
SUBMITS: dict[str, tuple[str, Submit]] = {
    "refresh": (keys.refresh_queued_key(USER), lambda app, r: submit_refresh_user(app, r, USER)),
    "retrain": (keys.RETRAIN_LOCK, submit_retrain),
}


class LostReply:
    """A broker that took the message but whose reply never came: by the time the send raises,
    the job has run and let go of its mark, and a later call has set its own."""

    def __init__(self, r: fakeredis.FakeRedis, mark: str) -> None:
        self.r, self.mark = r, mark

    def send_task(self, name: str, args: list | None = None, task_id: str | None = None):
        self.r.set(self.mark, LATER_JOB)
        raise OperationalError("connection lost before the broker's reply")


class DeadBroker:
    def send_task(self, name: str, args: list | None = None, task_id: str | None = None):
        raise OperationalError("Error 111 connecting to localhost:6379. Connection refused.")


class Churning(fakeredis.FakeRedis):
    """Every queued refresh starts between a caller's failed SET NX and its GET."""

    def get(self, name):
        return None if name == keys.refresh_queued_key(USER) else super().get(name)


@pytest.mark.parametrize("kind", SUBMITS)
def test_a_failed_send_keeps_the_mark_a_later_job_set(kind):
    mark, submit = SUBMITS[kind]
    r = fakeredis.FakeRedis()
    with pytest.raises(OperationalError):
        submit(LostReply(r, mark), r)
    assert r.get(mark) == LATER_JOB


@pytest.mark.parametrize("kind", SUBMITS)
def test_a_failed_send_takes_back_its_own_mark(kind):
    mark, submit = SUBMITS[kind]
    r = fakeredis.FakeRedis()
    with pytest.raises(OperationalError):
        submit(DeadBroker(), r)
    assert r.get(mark) is None


def test_a_refresh_queued_without_the_mark_leaves_the_mark_alone_when_its_send_fails():
    server = fakeredis.FakeServer()
    r = fakeredis.FakeRedis(server=server)
    r.set(keys.refresh_queued_key(USER), LATER_JOB)
    with pytest.raises(OperationalError):
        submit_refresh_user(DeadBroker(), Churning(server=server), USER)
    assert r.get(keys.refresh_queued_key(USER)) == LATER_JOB
