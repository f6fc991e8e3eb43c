"""Retraining as Celery tasks: train, fan users out in chunks, publish once every chunk succeeded.

    retrain ──► users_chunk x N (a chord, any number of workers) ──► publish
       │ writes the version folder and the movie/cluster keys      │ flips the pointer
       └ takes the retrain lock (token = job id) ──────────────────┴ releases it (also on failure)

`retrain` replaces itself with the chord, so the chord's callback inherits the job id and the
job's final state is the publish result.
"""

from __future__ import annotations

import json
from dataclasses import fields
from functools import lru_cache
from pathlib import Path

import redis
from celery import Task, chord
from celery.exceptions import Ignore
from celery.utils.log import get_task_logger

from cache import keys, versions
from cache.publish import PublishError, finish_publish, write_latest
from cache.redis_client import get_redis
from cache.settings import get_settings, soft_limit
from cache.writer import write_catalog, write_users
from pipeline.personal import PersonalOptions
from pipeline.run import PipelineParams, train
from pipeline.users import Catalog, load_catalog, read_user_ratings, recommend_users, user_ids
from tasks.celery_app import (
    TASK_PUBLISH,
    TASK_RELEASE_LOCK,
    TASK_RETRAIN,
    TASK_USERS_CHUNK,
    celery_app,
)
from tasks.jobs import record_chunk_done, record_job, retrain_lock, user_fanout
from tasks.user_chunks import merge_parts, user_ranges, write_part

log = get_task_logger(__name__)
SETTINGS = get_settings()
# Share of the job's progress bar per phase: training, per-user chunks, publishing.
TRAIN_SHARE, USERS_SHARE = 60, 35


@celery_app.task(
    bind=True,
    name=TASK_RETRAIN,
    time_limit=SETTINGS.retrain_time_limit,
    soft_time_limit=soft_limit(SETTINGS.retrain_time_limit),
)
def retrain(self: Task) -> dict:
    """Train a new version; returns at once (skipped) when another retrain holds the lock."""
    settings, r, job_id = get_settings(), get_redis(), self.request.id
    if r.hexists(keys.job_key(job_id), "version"):
        # A redelivery after the chord was sent (worker lost before the ack): the chord owns the
        # job id's result now, so store nothing and train nothing.
        log.warning("retrain %s redelivered after its hand-off: not training again", job_id)
        raise Ignore()
    record_job(r, job_id, "retrain")
    lock = retrain_lock(r, settings)
    if not lock.acquire(job_id):
        running = lock.holder()
        log.info("retrain %s skipped: %s is running", job_id, running)
        return {"status": "skipped", "running": running}
    try:
        return self.replace(_train_and_stage(self, r, job_id))
    except Ignore:  # replace() raises it once the chord is sent: the chord now owns the lock
        raise
    except BaseException:
        lock.release(job_id)
        raise


def _train_and_stage(task: Task, r: redis.Redis, job_id: str) -> chord:
    settings = get_settings()
    if settings.data_dir is None:
        raise FileNotFoundError("no data folder: set MOVIEREC_DATA to a MovieLens folder")

    def on_stage(stage: str, fraction: float) -> None:
        _progress(task, job_id, "train:" + stage, TRAIN_SHARE * fraction)

    params = served_params(settings.models_dir, versions.active_version(r))
    result = train(settings.data_dir, settings.out_dir, params, on_stage)
    version, version_dir = result.version, result.version_dir
    versions.mark_staging(r, version)
    ids = user_ids(version_dir)
    write_catalog(r, version, version_dir, n_users=len(ids), extra_meta={"job_id": job_id})
    ranges = user_ranges(ids, settings.chunk_users)
    record_job(r, job_id, "retrain", version=version, chunks_total=len(ranges))
    _progress(task, job_id, "users", TRAIN_SHARE, version=version)
    log.info("retrain %s: %s, %d users in %d chunks", job_id, version, len(ids), len(ranges))
    return user_fanout(task.app, version, ranges, len(ids), job_id)


def served_params(models_dir: Path, active: str | None) -> PipelineParams:
    """The live version's training settings, so a retrain keeps the chosen method, k, depth..."""
    metadata = models_dir / active / "metadata.json" if active else None
    if metadata is None or not metadata.is_file():
        if metadata is not None:
            log.warning("%s is missing: retraining with the default parameters", metadata)
        return PipelineParams(plots=False)
    saved = _known_fields(PipelineParams, json.loads(metadata.read_text())["parameters"])
    saved["personal"] = PersonalOptions(**_known_fields(PersonalOptions, saved.get("personal", {})))
    saved["choose_k"] = tuple(saved.get("choose_k", ()))
    return PipelineParams(**saved | {"plots": False})


def _known_fields(cls: type, values: dict) -> dict:
    """Drop keys a dataclass no longer has, so metadata of an older version still loads."""
    names = {item.name for item in fields(cls)}
    return {name: value for name, value in values.items() if name in names}


@celery_app.task(
    bind=True,
    name=TASK_USERS_CHUNK,
    time_limit=SETTINGS.chunk_time_limit,
    soft_time_limit=soft_limit(SETTINGS.chunk_time_limit),
    autoretry_for=(redis.ConnectionError, redis.TimeoutError),
    retry_backoff=True,
    max_retries=5,
)
def users_chunk(self: Task, version: str, user_lo: int, user_hi: int, job_id: str) -> dict:
    """Favorites and lists of users in [user_lo, user_hi] into the staged namespace and a part file.

    Idempotent: a redelivered or retried chunk rewrites the same hash fields and the same file.
    """
    r = get_redis()
    hold_lock(r, job_id)
    folder = version_dir(version)
    favorites, recs = recommend_users(
        read_user_ratings(folder, user_lo, user_hi), catalog_for(str(folder))
    )
    write_part(folder, user_lo, user_hi, favorites, recs)
    written = write_users(r, version, favorites, recs)
    done = record_chunk_done(r, job_id, user_lo, user_hi)
    total = int(r.hget(keys.job_key(job_id), "chunks_total") or done)
    _progress(self, job_id, "users", TRAIN_SHARE + USERS_SHARE * done / total, version=version)
    return {"users": written}


@celery_app.task(
    bind=True,
    name=TASK_PUBLISH,
    time_limit=SETTINGS.chunk_time_limit,
    soft_time_limit=soft_limit(SETTINGS.chunk_time_limit),
)
def publish_version(
    self: Task, chunk_results: list[dict], version: str, n_users: int, job_id: str
) -> dict:
    """The chord callback, run only when every chunk succeeded: flip the pointer, free the lock."""
    settings, r = get_settings(), get_redis()
    try:
        pointers = versions.read_pointers(r)
        if pointers.active == version:  # redelivered after the flip: report it, flip nothing
            users = r.hlen(keys.VersionKeys(version).users)
            return {"version": version, "previous": pointers.previous, "users": users}
        hold_lock(r, job_id)
        _progress(self, job_id, "publish", TRAIN_SHARE + USERS_SHARE, version=version)
        chunk_users = sum(part["users"] for part in chunk_results)
        if chunk_users != n_users:
            raise RuntimeError(f"chunks computed {chunk_users} users, expected {n_users}")
        merge_parts(version_dir(version))
        summary = finish_publish(r, version, expected_users=n_users)
        write_latest(settings.models_dir, version)
        summary["dropped"] = versions.cleanup(r, settings.grace_seconds, settings.lock_ttl_seconds)
    finally:
        retrain_lock(r, settings).release(job_id)
    log.info("published %s (previous %s)", version, summary["previous"])
    return summary


@celery_app.task(name=TASK_RELEASE_LOCK)
def release_lock(job_id: str) -> bool:
    """Error callback of the chord: a failed chunk must not keep retrains blocked until the TTL."""
    return retrain_lock(get_redis(), get_settings()).release(job_id)


def hold_lock(r: redis.Redis, job_id: str) -> None:
    """Prolong the job's lock, or stop: a job that lost it may not write or publish a version."""
    lock = retrain_lock(r, get_settings())
    if not lock.extend(job_id):
        raise PublishError(
            f"retrain lock lost by job {job_id} (held by {lock.holder()}): not publishing"
        )


def version_dir(version: str) -> Path:
    return get_settings().models_dir / keys.check_version(version)


@lru_cache(maxsize=2)
def catalog_for(version_dir: str) -> Catalog:
    """Loaded once per worker process and version, not once per chunk."""
    return load_catalog(version_dir)


def _progress(task: Task, job_id: str, stage: str, percent: float, **extra: str) -> None:
    task.backend.store_result(
        job_id, {"stage": stage, "percent": round(percent, 1), **extra}, "PROGRESS"
    )
