"""`movierec up`: Redis (embedded unless REDIS_URL is set), a worker with beat, and the web app.

When no version is active it publishes the newest complete version folder, or else trains
through the worker, the same path the weekly retrain takes.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from celery import Celery

from cache.redis_client import redis_from_url
from cache.settings import REPO, Settings, get_settings
from service.bootstrap import ensure_active
from service.database_setup import import_if_empty
from service.embedded_postgres import STOP_SIGNAL, prepare_postgres, start_postgres
from service.embedded_redis import free_port, start_redis
from service.errors import ServiceError
from service.polling import wait_until
from service.secret_files import private_secret
from service.supervisor import Supervisor
from service.urls import without_password
from service.web_server import WEB_THREADS, default_web_workers
from tasks.celery_app import make_celery
from tasks.jobs import Submission, job_status, submit_retrain


@dataclass(frozen=True)
class UpOptions:
    bind: str = "127.0.0.1:8000"
    redis_port: int | None = None
    web_workers: int = field(default_factory=default_web_workers)
    web_threads: int = WEB_THREADS
    concurrency: int = 4
    startup_timeout: float = 60.0


def say(message: str) -> None:
    print(f"movierec up: {message}", flush=True)


def run_up(options: UpOptions) -> int:
    with ExitStack() as stack:
        children = stack.enter_context(Supervisor(say=say))
        if get_settings().redis_url is None:
            os.environ["REDIS_URL"] = _embedded_redis(stack, children, options.redis_port)
        if get_settings().database_url is None:
            os.environ["MOVIEREC_DATABASE_URL"] = _embedded_postgres(children)
        _export_child_settings()
        settings = get_settings()
        import_if_empty(settings.database_url, settings, say)

        cli = [sys.executable, "-m", "service.cli"]
        worker = [*cli, "worker", "--beat", "--concurrency", str(options.concurrency)]
        children.spawn("worker", worker, os.environ, stop_signal=signal.SIGQUIT)
        web = [
            *cli, "web", "--bind", options.bind,
            "--workers", str(options.web_workers), "--threads", str(options.web_threads),
        ]  # fmt: skip
        children.spawn("web", web, os.environ)

        r, app = redis_from_url(settings.broker_url), make_celery(settings)

        def train_through_worker() -> dict:
            job_id = started_job(submit_retrain(app, r))
            return _follow(app, r, job_id, children, settings.job_deadline_seconds)

        ensure_active(r, settings, train_through_worker, say)
        base = f"http://{options.bind}"
        _wait_healthy(base + "/health", children, options.startup_timeout)
        _print_ready(base, settings)
        children.wait()
    return 0


def _embedded_redis(stack: ExitStack, children: Supervisor, port: int | None) -> str:
    folder = get_settings().output.redis
    stack.enter_context(_exclusive(folder))
    server = start_redis(
        folder,
        port,
        spawn=lambda command: children.spawn("redis", command, stdout=subprocess.DEVNULL),
    )
    say(f"embedded Redis {without_password(server.url)} (data in {folder})")
    return server.url


def _embedded_postgres(children: Supervisor) -> str:
    folder, port = get_settings().output.postgres, free_port()

    def spawn(command: list[str], **popen_kwargs: Any) -> subprocess.Popen:
        return children.spawn(
            "postgres",
            command,
            stop_signal=STOP_SIGNAL,
            # A killed server leaves a pid file; its folders' search permission may be gone.
            before_restart=lambda: prepare_postgres(folder, port),
            **popen_kwargs,
        )

    server = start_postgres(folder, port, spawn=spawn)
    say(f"embedded PostgreSQL on 127.0.0.1 (data in {folder})")
    return server.url


def _export_child_settings() -> None:
    """Children inherit the environment: make it say everything they need, then reread it."""
    settings = get_settings()
    if not settings.api_token:  # kept across restarts, so scripts holding it keep working
        os.environ["MOVIEREC_API_TOKEN"] = private_secret(settings.output.api_token)
    os.environ["MOVIEREC_OUTPUT"] = str(settings.out_dir)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p
    )
    get_settings.cache_clear()


def started_job(submission: Submission) -> str:
    """The new retrain's id; waiting on a job we did not start could wait forever."""
    if submission.accepted and submission.job_id is not None:
        return submission.job_id
    running = f"retrain {submission.job_id} is running" if submission.job_id else "lock contended"
    raise ServiceError(f"could not start the first training ({running}); try again when it ends")


def _follow(app: Celery, r: redis.Redis, job_id: str, children: Supervisor, timeout: float) -> dict:
    """Wait for the job to end; `timeout` is the longest a live retrain can run."""
    last = None

    def finished() -> dict | None:
        nonlocal last
        children.check()
        status = job_status(app, r, job_id) or {"state": "PENDING", "progress": None}
        if status["state"] == "SUCCESS":
            return status["result"]
        if status["state"] == "FAILURE":
            raise ServiceError(f"training failed: {status['error']}")
        progress = status["progress"] or {"stage": status["state"].lower(), "percent": 0}
        line = f"[{progress['percent']:5.1f}%] {progress['stage']}"
        if line != last:
            say(line)
            last = line
        return None

    return wait_until(
        finished,
        timeout,
        0.5,
        lambda: f"training job {job_id} did not finish within {timeout:.0f} s",
    )


def _wait_healthy(url: str, children: Supervisor, timeout: float) -> None:
    def healthy() -> bool | None:
        children.check()
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return True if response.status == 200 else None
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None

    wait_until(
        healthy, timeout, 0.2, lambda: f"{url} did not report healthy within {timeout:.0f} s"
    )


def _print_ready(base: str, settings: Settings) -> None:
    token = settings.api_token
    rating = """'[{"movieId": 1, "rating": 4.5}]'"""
    print(
        f"""
movierec is up
  API       {base}/
  dashboard {base}/dashboard
  API docs  {base}/docs
  health    {base}/health
  example   {base}/recommend/user/1?n=5
  Redis     {without_password(settings.broker_url or "")}
  database  {without_password(settings.database_url or "")}   (MOVIEREC_DATABASE_URL)
  token     {token}   (MOVIEREC_API_TOKEN; needed for POST, DELETE and /jobs)
  rate      curl -X POST -H "Authorization: Bearer {token}" -d {rating} {base}/users/1/ratings
  retrain   curl -X POST -H "Authorization: Bearer {token}" {base}/jobs/retrain
Press Ctrl-C to stop everything.
""",
        flush=True,
    )


@contextmanager
def _exclusive(folder: Path) -> Iterator[None]:
    """Refuse a second `up` on the same embedded Redis folder (two servers, one AOF file)."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "up.lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ServiceError(f"another `movierec up` is using {folder}") from None
        yield
