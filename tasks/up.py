"""`movierec up`: Redis (embedded unless REDIS_URL is set), a worker with beat, and the web app.

Trains and publishes first when no version is active: from the newest complete version folder
on disk if there is one, else through the worker, the same path the weekly retrain takes.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis
from celery import Celery

from tasks import versions
from tasks.celery_app import make_celery
from tasks.embedded_redis import start_redis
from tasks.jobs import job_status, submit_retrain
from tasks.publish import latest_version_dir, publish_version_dir
from tasks.redis_client import redis_from_url
from tasks.settings import REPO, Settings, get_settings
from tasks.supervisor import Supervisor


@dataclass(frozen=True)
class UpOptions:
    bind: str = "127.0.0.1:8000"
    redis_port: int | None = None
    web_workers: int = 2
    concurrency: int = 2
    startup_timeout: float = 60.0


def say(message: str) -> None:
    print(f"movierec up: {message}", flush=True)


def run_up(options: UpOptions) -> int:
    with ExitStack() as stack:
        children = stack.enter_context(Supervisor())
        settings = get_settings()
        if settings.redis_url is None:
            stack.enter_context(_exclusive(settings.out_dir / "redis"))
            _, url = start_redis(
                settings.out_dir / "redis",
                options.redis_port,
                spawn=lambda command: children.spawn("redis", command, stdout=subprocess.DEVNULL),
            )
            say(f"embedded Redis {url} (data in {settings.out_dir / 'redis'})")
            os.environ["REDIS_URL"] = url
        if not settings.api_token:
            os.environ["MOVIEREC_API_TOKEN"] = secrets.token_urlsafe(24)
        os.environ["MOVIEREC_OUTPUT"] = str(settings.out_dir)
        os.environ["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p
        )
        get_settings.cache_clear()
        settings = get_settings()

        cli = [sys.executable, "-m", "tasks.cli"]
        worker = [*cli, "worker", "--beat", "--concurrency", str(options.concurrency)]
        children.spawn("worker", worker, os.environ, stop_signal=signal.SIGQUIT)
        web = [*cli, "web", "--bind", options.bind, "--workers", str(options.web_workers)]
        children.spawn("web", web, os.environ)

        r = redis_from_url(settings.broker_url)
        _ensure_published(make_celery(settings), r, settings, children)
        base = f"http://{options.bind}"
        _wait_healthy(base + "/health", children, options.startup_timeout)
        _print_ready(base, settings)
        children.wait()
    return 0


def _ensure_published(app: Celery, r: redis.Redis, settings: Settings, children: Supervisor):
    active = versions.active_version(r)
    if active:
        say(f"serving cached version {active}")
        return
    latest = latest_version_dir(settings.models_dir)
    if latest is not None:
        say(f"publishing {latest} ...")
        summary = publish_version_dir(r, latest)
        say(f"published {summary['version']}: {summary['users']} users")
        return
    if settings.data_dir is None or not settings.data_dir.is_dir():
        raise FileNotFoundError(
            f"no model yet and no data to train on ({settings.data_dir}): "
            "pass --data DIR or set MOVIEREC_DATA"
        )
    say(f"no model yet: training on {settings.data_dir} through the worker ...")
    submission = submit_retrain(app, r, settings)
    result = _follow(app, r, submission.job_id, children)
    say(f"published {result['version']}: {result['users']} users")


def _follow(app: Celery, r: redis.Redis, job_id: str, children: Supervisor) -> dict:
    last = None
    while True:
        children.check()
        status = job_status(app, r, job_id) or {"state": "PENDING", "progress": None}
        if status["state"] == "SUCCESS":
            return status["result"]
        if status["state"] == "FAILURE":
            raise RuntimeError(f"training failed: {status['error']}")
        progress = status["progress"] or {"stage": status["state"].lower(), "percent": 0}
        line = f"[{progress['percent']:5.1f}%] {progress['stage']}"
        if line != last:
            say(line)
            last = line
        time.sleep(0.5)


def _wait_healthy(url: str, children: Supervisor, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        children.check()
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not report healthy within {timeout:.0f} s")
        time.sleep(0.2)


def _print_ready(base: str, settings: Settings) -> None:
    token = settings.api_token
    print(
        f"""
movierec is up
  API       {base}/
  health    {base}/health
  example   {base}/recommend/user/1?n=5
  Redis     {settings.broker_url}
  token     {token}   (MOVIEREC_API_TOKEN; needed for POST /jobs/...)
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
            raise RuntimeError(f"another `movierec up` is using {folder}") from None
        yield
