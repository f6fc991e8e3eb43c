"""`movierec up`'s supervisor: a dead child comes back after a backoff; one that keeps dying
stops everything with one message; Ctrl-C leaves nothing behind."""

from __future__ import annotations

import signal
import sys
import time

import pytest

from service import supervisor
from service.supervisor import ChildExited, Supervisor

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]
CRASHER = [sys.executable, "-c", "import sys; sys.exit(3)"]


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch):
    monkeypatch.setattr(supervisor, "FIRST_BACKOFF", 0.05)
    monkeypatch.setattr(supervisor, "MAX_BACKOFF", 0.2)


def run_checks(children: Supervisor, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        children.check()
        time.sleep(0.02)


def test_a_killed_child_is_restarted_after_its_preparation():
    said, prepared = [], []
    children = Supervisor(stop_timeout=5, say=said.append)
    with children:
        first = children.spawn("worker", SLEEPER, before_restart=lambda: prepared.append(1))
        first.send_signal(signal.SIGKILL)
        first.wait()
        run_checks(children, 0.5)
        again = children.children[0].process
        assert again.pid != first.pid and again.poll() is None
        assert prepared == [1]
        assert said == ["worker exited with status -9; restarting in 0.05 s", "worker restarted"]
    assert again.poll() is not None  # stopped with the supervisor


def test_a_child_that_keeps_dying_stops_everything_with_one_message():
    children = Supervisor(stop_timeout=5)
    with children:
        bystander = children.spawn("web", SLEEPER)
        children.spawn("beat", CRASHER)
        with pytest.raises(ChildExited, match=r"beat exited with status 3, 6 times .*giving up"):
            run_checks(children, 10)
    assert bystander.poll() is not None
