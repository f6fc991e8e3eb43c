"""Gunicorn serving `web.create_app()`, configured from code rather than a config file."""

from __future__ import annotations

import os

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
    options = {
        "bind": bind,
        "workers": workers,
        "threads": threads,
        "proc_name": "movierec-web",
        "graceful_timeout": 10,
        "timeout": 30,
        # A control socket in $HOME would be shared by every server on the machine.
        "control_socket_disable": True,
    }
    if access_log:
        options["accesslog"] = "-"
    WebServer(options).run()
