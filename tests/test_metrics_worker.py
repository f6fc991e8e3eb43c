"""A real worker with embedded beat: its heartbeat, beat's start and a job's run reach Redis,
and its task events reach a listener as they reach Celery Flower."""

from __future__ import annotations

import time

import pytest

from cache.redis_client import redis_from_url
from cache.settings import Settings
from tasks.celery_app import TASK_CLEANUP, make_celery
from tasks.heartbeats import read_liveness
from tasks.job_metrics import read_job_runs
from tests.serving_helpers import redis_server, serving_env, spawn_cli, stop, wait_until

pytestmark = pytest.mark.integration


def test_worker_and_beat_leave_their_marks_and_jobs_are_counted(tmp_path):
    with redis_server(tmp_path / "redis") as url:
        env = serving_env(REDIS_URL=url, MOVIEREC_OUTPUT=str(tmp_path / "out"))
        r, app = redis_from_url(url), make_celery(Settings.from_env(env))
        log = tmp_path / "worker.log"
        args = ["worker", "--beat", "--concurrency", "1"]
        worker = spawn_cli(args, env, log)
        try:
            live = wait_until(
                lambda: read_liveness(r).alive(time.time()), 90, f"a heartbeat (see {log})"
            )
            assert len(live) == 1 and live[0].startswith("celery@")
            wait_until(lambda: read_liveness(r).beat_tick, 30, f"beat's start (see {log})")

            lifecycle = {"task-sent", "task-received", "task-started", "task-succeeded"}
            assert lifecycle <= set(task_events(app)), "what Celery Flower follows"

            def cleanup_runs():
                return [run for run in read_job_runs(r) if run.kind == TASK_CLEANUP]

            [run] = wait_until(cleanup_runs, 60, f"the cleanup job's metrics (see {log})")
            assert (run.outcome, run.count, run.buckets[-1][1]) == ("success", 1, 1)
        finally:
            stop(worker)
            app.close()


def task_events(app, timeout: float = 60) -> list[str]:
    """The event types seen while one cleanup job runs, sent once the listener gets its first
    event (events published before it listens are lost)."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout

    def on_event(event: dict) -> None:
        if not seen:
            app.send_task(TASK_CLEANUP)
        seen.append(event["type"])
        receiver.should_stop = event["type"] == "task-succeeded" or time.monotonic() > deadline

    with app.connection_for_read() as connection:
        receiver = app.events.Receiver(connection, handlers={"*": on_event})
        receiver.capture(limit=None, timeout=timeout)
    return seen


def test_a_standalone_beat_marks_its_start(tmp_path):
    """`movierec beat`, as docker compose runs it, imports the receivers too."""
    with redis_server(tmp_path / "redis") as url:
        env = serving_env(REDIS_URL=url, MOVIEREC_OUTPUT=str(tmp_path / "out"))
        log = tmp_path / "beat.log"
        beat = spawn_cli(["beat"], env, log)
        try:
            wait_until(lambda: read_liveness(redis_from_url(url)).beat_tick, 60, f"a tick ({log})")
        finally:
            stop(beat)
