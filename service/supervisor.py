"""Child processes for `movierec up`: started in their own process groups, restarted with
backoff when they die, stopped in reverse.

Each child gets its own session, so Ctrl-C reaches only `up`, which then stops the web server
first and Redis last; on Linux a child is also told to exit if `up` itself is killed. A child
that keeps dying (MAX_RESTARTS within CRASH_WINDOW seconds) stops everything with one message.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from service.errors import ServiceError

PR_SET_PDEATHSIG = 1


class Shutdown(Exception):
    """SIGINT or SIGTERM reached the supervisor."""


class ChildExited(ServiceError):
    """A child stopped on its own; the service cannot run without it."""


FIRST_BACKOFF = 0.5  # seconds before the first restart; doubled for each recent crash
MAX_BACKOFF = 8.0
MAX_RESTARTS = 5
CRASH_WINDOW = 120.0


@dataclass
class Child:
    name: str
    start: Callable[[], subprocess.Popen]
    stop_signal: int
    before_restart: Callable[[], object] | None = None  # e.g. clearing a stale pid file
    process: subprocess.Popen = field(init=False)
    crashes: list[float] = field(default_factory=list)  # when it died, recent ones only
    restart_at: float | None = None  # set while it waits out its backoff

    def __post_init__(self) -> None:
        self.process = self.start()


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Supervisor:
    def __init__(
        self, stop_timeout: float = 20.0, say: Callable[[str], None] = lambda message: None
    ) -> None:
        self.children: list[Child] = []
        self.stop_timeout = stop_timeout
        self.say = say

    def spawn(
        self,
        name: str,
        command: Sequence[str],
        env: Mapping[str, str] | None = None,
        stop_signal: int = signal.SIGTERM,
        before_restart: Callable[[], object] | None = None,
        **kw,
    ) -> subprocess.Popen:
        """Start a child; `before_restart` runs before each restart (not the first start)."""

        def start() -> subprocess.Popen:
            return subprocess.Popen(
                list(command),
                env=dict(env) if env is not None else None,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
                **kw,
            )

        child = Child(name, start, stop_signal, before_restart)
        self.children.append(child)
        return child.process

    def check(self) -> None:
        """Restart children that died, after their backoff; give up on one that keeps dying."""
        now = time.monotonic()
        for child in self.children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    if child.before_restart is not None:
                        child.before_restart()
                    child.process, child.restart_at = child.start(), None
                    self.say(f"{child.name} restarted")
                continue
            code = child.process.poll()
            if code is None:
                continue
            # What it started in its group (Celery's embedded beat) must not outlive it.
            _signal_group(child.process, signal.SIGKILL)
            child.crashes = [t for t in child.crashes if now - t < CRASH_WINDOW] + [now]
            if len(child.crashes) > MAX_RESTARTS:
                raise ChildExited(
                    f"{child.name} exited with status {code}, {len(child.crashes)} times in "
                    f"{CRASH_WINDOW:.0f} s; giving up"
                )
            delay = min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** (len(child.crashes) - 1))
            child.restart_at = now + delay
            self.say(f"{child.name} exited with status {code}; restarting in {delay:g} s")

    def wait(self, poll_seconds: float = 0.2) -> None:
        """Keep the children running until one gives up (ChildExited) or a signal arrives
        (Shutdown)."""
        while True:
            self.check()
            time.sleep(poll_seconds)

    def stop_all(self) -> None:
        """Stop each child, newest first; SIGKILL the group of one that outlives the timeout.

        The stop signal goes to the child alone, so it can shut its own workers down in order.
        """
        for child in reversed(self.children):
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(child.stop_signal)
            try:
                child.process.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                _signal_group(child.process, signal.SIGKILL)
                child.process.wait()
            # Pool processes of a child live in its group and may outlive their parent briefly.
            _signal_group(child.process, signal.SIGKILL)
        self.children.clear()

    def __enter__(self) -> Supervisor:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, _raise_shutdown)
        return self

    def __exit__(self, *exc: object) -> None:
        # A second Ctrl-C while stopping must not abandon the remaining children.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)
        try:
            self.stop_all()
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, signal.SIG_DFL)


def _raise_shutdown(signum: int, _frame: object) -> None:
    raise Shutdown(signal.Signals(signum).name)


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)
