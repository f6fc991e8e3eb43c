"""Celery signal receivers that leave health marks and job metrics in Redis.

The Celery app lists this module in `include`, so workers and beat import it (before they fork
their pool or embedded beat, which inherit the receivers) and the web process does not. Redis is
reached through a fail-fast client: a mark must never stall a worker's event loop for long.
"""

from __future__ import annotations

import time

import redis
from celery.signals import (
    after_task_publish,
    beat_init,
    heartbeat_sent,
    task_failure,
    task_postrun,
    task_prerun,
)

from cache.redis_client import ClientProfile, get_redis
from store.objects import take_counts
from tasks.heartbeats import record_beat_tick, record_heartbeat
from tasks.job_metrics import record_job_run, record_store_counts

MARKS = ClientProfile(timeout=1.0, retries=1)
_started: dict[str, float] = {}  # task id -> monotonic start, in the process running the task


def marks_redis() -> redis.Redis:
    return get_redis(MARKS)


@heartbeat_sent.connect
def worker_heartbeat(sender, **_) -> None:
    """Sent by a worker's main process with every Celery heartbeat (`sender` is its Heart)."""
    record_heartbeat(marks_redis(), sender.eventer.hostname, time.time())


@beat_init.connect
def beat_started(**_) -> None:
    """In the beat process only: mark the start (a restart is not late), then every task sent."""
    record_beat_tick(marks_redis(), time.time())
    after_task_publish.connect(beat_sent_task)


def beat_sent_task(**_) -> None:
    record_beat_tick(marks_redis(), time.time())


@task_prerun.connect
def job_started(task_id: str, task, **_) -> None:
    if not task.request.is_eager:  # an in-process call (`apply`, tests) is no worker's job
        _started[task_id] = time.monotonic()


@task_postrun.connect
def job_finished(task_id: str, task, state: str | None, **_) -> None:
    """`state` is None when the worker was stopped while the task ran."""
    started = _started.pop(task_id, None)
    if started is not None:
        outcome = (state or "interrupted").lower()
        record_job_run(marks_redis(), task.name, outcome, time.monotonic() - started)
        record_store_counts(marks_redis(), take_counts())


@task_failure.connect
def job_lost(sender, task_id: str, **_) -> None:
    """A failure no postrun follows: the worker's main process reports it when a hard time limit
    killed the task or its process died. One the task raised itself is counted at postrun."""
    if task_id not in _started and not sender.request.is_eager:
        record_job_run(marks_redis(), sender.name, "failure", None)
