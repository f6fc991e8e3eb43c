"""Child processes for `movierec up`: started in their own process groups, stopped in reverse.

Each child gets its own session, so Ctrl-C reaches only `up`, which then stops the web server
first and Redis last; on Linux a child is also told to exit if `up` itself is killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from service.errors import ServiceError

PR_SET_PDEATHSIG = 1


class Shutdown(Exception):
    """SIGINT or SIGTERM reached the supervisor."""


class ChildExited(ServiceError):
    """A child stopped on its own; the service cannot run without it."""


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    stop_signal: int


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Supervisor:
    def __init__(self, stop_timeout: float = 20.0) -> None:
        self.children: list[Child] = []
        self.stop_timeout = stop_timeout

    def spawn(
        self,
        name: str,
        command: Sequence[str],
        env: Mapping[str, str] | None = None,
        stop_signal: int = signal.SIGTERM,
        **kw,
    ) -> subprocess.Popen:
        process = subprocess.Popen(
            list(command),
            env=dict(env) if env is not None else None,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            **kw,
        )
        self.children.append(Child(name, process, stop_signal))
        return process

    def check(self) -> None:
        for child in self.children:
            code = child.process.poll()
            if code is not None:
                raise ChildExited(f"{child.name} exited with status {code}")

    def wait(self, poll_seconds: float = 0.5) -> None:
        """Block until a child exits (raises ChildExited) or a signal arrives (raises Shutdown)."""
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
