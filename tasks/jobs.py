"""Starting jobs and reporting on them, for the web app and the CLI (no pandas imported here).

A job record in Redis names every job this service started, so an unknown id is a 404
rather than Celery's indistinguishable PENDING.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass
from typing import NamedTuple

import redis
from celery import Celery

from cache import keys
from cache.lock import Heartbeat, TokenLock
from cache.settings import Settings
from pipeline.errors import MovierecError
from tasks.celery_app import RESULT_TTL_SECONDS, TASK_REFRESH_USER, TASK_RETRAIN

ERROR_CHARS = 300
# A queued refresh's mark outlives any wait in the queue; if the message were lost, the mark
# expires and the pending sweep (or the next write) queues another.
REFRESH_QUEUED_TTL_SECONDS = 600
# A submitted retrain waits at most this long for a worker before its lock frees; once a worker
# runs it, the lock's TTL is the short one a heartbeat renews.
QUEUED_LOCK_SECONDS = 600
JOBS_KEPT = 1000  # in the index of recent jobs
WORKER_LOST = (
    "WorkerLost: the worker running this job died (its lock lapsed); nothing was published. "
    "Start a new retrain."
)


@dataclass(frozen=True)
class Submission:
    accepted: bool
    job_id: str | None  # the new job, or the one already running when not accepted


def retrain_lock(r: redis.Redis, settings: Settings) -> TokenLock:
    """The lock as a running step holds it: a short TTL that a heartbeat renews."""
    return TokenLock(r, keys.RETRAIN_LOCK, settings.lock_ttl_seconds)


class JobLost(MovierecError):
    """The process running the job died: its lock lapsed, so the job may not go on."""


# Take or renew the lock for a job that is neither marked lost nor ended: 1, or 0 when another
# job holds it, or -1 when this job was given up on or has ended (a message redelivered after
# its worker died, or after the job published or failed).
_HOLD = """
if redis.call('HEXISTS', KEYS[2], 'lost') == 1 or redis.call('HEXISTS', KEYS[2], 'ended') == 1 then
  return -1
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

# A started job whose lock lapsed is lost, once and for good: its holder died. A job that let
# go of its lock itself (it finished, or failed) is not.
_MARK_LOST = """
if redis.call('GET', KEYS[1]) == ARGV[1] or redis.call('HEXISTS', KEYS[2], 'ended') == 1 then
  return 0
end
redis.call('HSETNX', KEYS[2], 'lost', ARGV[2])
return 1
"""


def hold_retrain_lock(r: redis.Redis, settings: Settings, job_id: str) -> bool:
    """True when the job holds the lock now (taken again if it lapsed and nobody took it);
    False when another job holds it; JobLost when this job was given up on."""
    held = r.eval(
        _HOLD, 2, keys.RETRAIN_LOCK, keys.job_key(job_id), job_id, settings.lock_ttl_seconds * 1000
    )
    if held == -1:
        raise JobLost(f"job {job_id} has ended, or was given up on when its worker died")
    return held == 1


def release_retrain_lock(r: redis.Redis, settings: Settings, job_id: str) -> bool:
    """The job ends (published, or failed): say so before letting go, so nobody reading its
    status in between takes the free lock for a dead worker."""
    # Out of memory under noeviction refuses the mark; the lock must go all the same.
    with contextlib.suppress(redis.ResponseError):
        r.hset(keys.job_key(job_id), "ended", repr(time.time()))
    return retrain_lock(r, settings).release(job_id)


def retrain_heartbeat(r: redis.Redis, settings: Settings, job_id: str) -> Heartbeat:
    """Renews the job's lock while a step runs, three times per TTL."""

    def renew() -> bool:
        try:
            return hold_retrain_lock(r, settings, job_id)
        except JobLost:  # the job failed meanwhile (another chunk): this step stops holding
            return False

    return Heartbeat(renew, settings.lock_ttl_seconds / 3)


def _mark_lost_if_orphaned(r: redis.Redis, job_id: str) -> bool:
    return bool(
        r.eval(_MARK_LOST, 2, keys.RETRAIN_LOCK, keys.job_key(job_id), job_id, repr(time.time()))
    )


def record_job(r: redis.Redis, job_id: str, kind: str, **fields: str | int) -> None:
    """The job's record, and its place in the index of recent jobs (the newest JOBS_KEPT)."""
    key, now = keys.job_key(job_id), time.time()
    pipe = r.pipeline(transaction=False)
    pipe.hsetnx(key, "kind", kind)
    pipe.hsetnx(key, "submitted_at", repr(now))
    if fields:
        pipe.hset(key, mapping=fields)
    pipe.expire(key, RESULT_TTL_SECONDS)
    pipe.zadd(keys.JOBS, {job_id: now}, nx=True)
    pipe.zremrangebyrank(keys.JOBS, 0, -JOBS_KEPT - 1)
    pipe.execute()


class RecentJob(NamedTuple):
    job_id: str
    submitted_at: float  # Unix time


def recent_jobs(r: redis.Redis, limit: int) -> list[RecentJob]:
    """The newest jobs, newest first (a job's record may have expired since)."""
    found = r.zrevrange(keys.JOBS, 0, limit - 1, withscores=True)
    return [RecentJob(job_id.decode(), at) for job_id, at in found]


def chunks_key(job_id: str) -> str:
    """The set of finished chunk ranges: a redelivered chunk adds itself again, not a count."""
    return keys.job_key(job_id) + ":chunks"


def record_chunk_done(r: redis.Redis, job_id: str, user_lo: int, user_hi: int) -> int:
    """Mark one chunk finished; returns how many distinct chunks have finished."""
    pipe = r.pipeline(transaction=False)
    pipe.sadd(chunks_key(job_id), f"{user_lo}-{user_hi}")
    pipe.expire(chunks_key(job_id), RESULT_TTL_SECONDS)
    pipe.scard(chunks_key(job_id))
    return pipe.execute()[-1]


def _claim(mark: TokenLock, job_id: str) -> str | None:
    """The job the mark names: `job_id` once taken, or the holder's; None when it kept changing
    hands (each holder let go between our failed SET NX and the GET)."""
    for _ in range(3):
        if mark.take(job_id):
            return job_id
        holder = mark.holder()
        if holder is not None:
            return holder
    return None


def _submit_marked(
    app: Celery,
    r: redis.Redis,
    mark: TokenLock,
    task: str,
    kind: str,
    args: list[int] | None = None,
    *,
    queue_unmarked: bool,
    **fields: str | int,
) -> Submission:
    """Queue `task` as a new job of `kind` named by `mark`, unless the mark names a job already;
    when the mark kept changing hands, `queue_unmarked` queues the job without it. `fields` go
    into the job's record.

    A failed send takes the mark back only if it is still this job's: the job may have reached
    the broker after all, started and cleared it, and a later call set its own since.
    """
    job_id = str(uuid.uuid4())
    holder = _claim(mark, job_id) or (job_id if queue_unmarked else None)
    if holder != job_id:
        return Submission(accepted=False, job_id=holder)
    try:
        record_job(r, job_id, kind, **fields)
        app.send_task(task, args=args, task_id=job_id)
    except Exception:
        mark.release(job_id)
        raise
    return Submission(accepted=True, job_id=job_id)


def submit_retrain(app: Celery, r: redis.Redis) -> Submission:
    """Take the retrain lock for a fresh job id before queueing, so a second caller sees a 409."""
    lock = TokenLock(r, keys.RETRAIN_LOCK, QUEUED_LOCK_SECONDS)
    return _submit_marked(app, r, lock, TASK_RETRAIN, "retrain", queue_unmarked=False)


def submit_refresh_user(app: Celery, r: redis.Redis, user_id: int) -> str:
    """A refresh of the user that has not started yet: a new one, or the one already queued.

    A refresh clears the queued mark before it reads the user's ratings, so a write that finds
    the mark is seen by that refresh, and a burst of writes costs one refresh.
    """
    mark = TokenLock(r, keys.refresh_queued_key(user_id), REFRESH_QUEUED_TTL_SECONDS)
    return _submit_marked(
        app, r, mark, TASK_REFRESH_USER, "refresh_user", [user_id], queue_unmarked=True,
        user_id=user_id,
    ).job_id  # fmt: skip


def public_error(error: object) -> str:
    """Type and first line only: later lines (tracebacks, file lists) are for the worker log."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"[:ERROR_CHARS]


def _lost(r: redis.Redis, record: dict[str, str], job_id: str, state: str) -> bool:
    """A retrain that started and no longer holds the lock: its worker died."""
    if "lost" in record:
        return True
    running = record.get("kind") == "retrain" and state in ("STARTED", "PROGRESS")
    return running and _mark_lost_if_orphaned(r, job_id)


def job_status(app: Celery, r: redis.Redis, job_id: str) -> dict | None:
    """State, progress, result or error of a job this service started; None if unknown."""
    record = {k.decode(): v.decode() for k, v in r.hgetall(keys.job_key(job_id)).items()}
    if not record:
        return None
    meta = app.backend.get_task_meta(job_id)  # state and info from one read, so they agree
    state, info = meta["status"], meta["result"]
    if _lost(r, record, job_id, state):
        state, info = "FAILURE", None
    status = {
        "id": job_id,
        "kind": record.get("kind"),
        "state": state,
        "progress": None,
        "result": None,
        "error": None,
    }
    if state == "FAILURE":
        status["error"] = public_error(info) if info is not None else WORKER_LOST
    elif state == "SUCCESS":
        status["result"] = info
        status["progress"] = {"stage": "done", "percent": 100}
    elif state == "PROGRESS":
        status["progress"] = info
    elif state == "STARTED":
        status["progress"] = {"stage": "started", "percent": 0}
    if "chunks_total" in record:
        status["chunks"] = {
            "done": r.scard(chunks_key(job_id)),
            "total": int(record["chunks_total"]),
        }
    return status
