"""Gunicorn serving `web.create_app()`, configured from code rather than a config file."""

from __future__ import annotations

import os
import shutil
import tempfile

from gunicorn.app.base import BaseApplication


def default_workers() -> int:
    """Two per core: requests mostly wait on Redis round trips."""
    return 2 * (os.cpu_count() or 1)


class WebServer(BaseApplication):
    def __init__(self, options: dict) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings:  # newer settings are skipped on older gunicorn
                self.cfg.set(key, value)

    def load(self):
        from web import create_app

        return create_app()


def serve(bind: str, workers: int, threads: int = 1, access_log: bool = False) -> None:
    metrics = metrics_dir()
    options = {
        "bind": bind,
        "workers": workers,
        "threads": threads,
        "proc_name": "movierec-web",
        "graceful_timeout": 10,
        "timeout": 30,
        # A control socket in $HOME would be shared by every server on the machine.
        "control_socket_disable": True,
        "child_exit": _worker_exited,
        "on_exit": lambda server: shutil.rmtree(metrics, ignore_errors=True),
    }
    if access_log:
        options["accesslog"] = "-"
    WebServer(options).run()


def metrics_dir() -> str:
    """A new, empty folder where the workers' request metrics add up (web.metrics), named in the
    environment before any worker imports prometheus_client. One per server: two servers on one
    machine never mix or wipe each other's counts."""
    folder = tempfile.mkdtemp(prefix="movierec-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    return folder


def _worker_exited(server, worker) -> None:
    """prometheus_client's bookkeeping for a worker gone: its live gauges, if any, stop counting."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
