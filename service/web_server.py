"""Granian serving `web.create_app()` over WSGI, configured from code rather than a config file.

Granian (a Rust HTTP server) parses, keeps connections alive and writes responses outside the
interpreter: per request it costs a fifth of what gunicorn's sync worker did (BENCHMARKS.md,
"Serving"), so the workers' CPU goes to the app.
"""

from __future__ import annotations

import os
import shutil
import tempfile

WEB_THREADS = 2  # per web worker: one works while the other waits on its Redis round trip


def default_workers() -> int:
    """Two per core, for processes that mostly wait on Redis and PostgreSQL (Celery's)."""
    return 2 * (os.cpu_count() or 1)


def default_web_workers() -> int:
    """One per core, WEB_THREADS threads each: measured against two single-threaded workers per
    core, it spent less CPU per request and had a lower p99 (BENCHMARKS.md, "Serving")."""
    return os.cpu_count() or 1


def serve(bind: str, workers: int, threads: int = WEB_THREADS, access_log: bool = False) -> None:
    # Imported here: the command line's parser reads the defaults above and stays light.
    from granian import Granian
    from granian.constants import Interfaces
    from granian.log import LogLevels

    host, _, port = bind.rpartition(":")
    metrics = metrics_dir()
    server = Granian(
        "web:create_app",
        address=host.strip("[]"),
        port=int(port),
        interface=Interfaces.WSGI,
        workers=workers,
        blocking_threads=threads,
        factory=True,
        websockets=False,
        log_level=LogLevels.warning,
        log_access=access_log,
        respawn_failed_workers=True,
        respawn_interval=1.0,
        workers_kill_timeout=10,
    )
    try:
        server.serve()
    finally:
        shutil.rmtree(metrics, ignore_errors=True)


def metrics_dir() -> str:
    """A new, empty folder where the workers' request metrics add up (web.metrics), named in the
    environment before any worker imports prometheus_client. One per server: two servers on one
    machine never mix or wipe each other's counts."""
    folder = tempfile.mkdtemp(prefix="movierec-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    return folder
