"""Retraining as Celery tasks: train, fan users out in chunks, publish once every chunk succeeded.

    retrain ──► users_chunk x N (a chord, any number of workers) ──► publish
       │ writes the version folder and the movie/cluster keys      │ flips the pointer
       └ takes the retrain lock (token = job id) ──────────────────┴ releases it (also on failure)

`retrain` replaces itself with the chord, so the chord's callback inherits the job id and the
job's final state is the publish result.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import redis
from celery import Task, chord
from celery.exceptions import Ignore
from celery.utils.log import get_task_logger

from cache import keys, versions
from cache.publish import PublishError, finish_publish
from cache.redis_client import get_redis
from cache.settings import Settings, get_settings, get_store
from cache.writer import write_catalog, write_users
from db.changes import changed_after, settle
from db.database import DatabaseUnavailable
from db.erasure import erased_ids
from db.snapshot import database_loader
from pipeline.artifacts import (
    COMPLETE,
    TRAINED,
    VersionFolder,
    merge_user_parts,
    write_user_part,
)
from pipeline.errors import DataError
from pipeline.lists.users import read_user_ratings, recommend_users, user_ids
from pipeline.params import PipelineParams
from pipeline.run import Loader, train
from store.objects import StoreUnavailable
from store.versions import VersionNotReady, VersionStore
from tasks.celery_app import (
    TASK_PUBLISH,
    TASK_RELEASE_LOCK,
    TASK_RETRAIN,
    TASK_USERS_CHUNK,
    celery_app,
    time_limits,
)
from tasks.database_access import worker_database
from tasks.fanout import user_fanout, user_ranges
from tasks.jobs import (
    JobLost,
    hold_retrain_lock,
    record_chunk_done,
    record_job,
    release_retrain_lock,
    retrain_heartbeat,
    retrain_lock,
    submit_refresh_user,
)
from tasks.placement import carry_changes
from tasks.version_access import catalog_for, version_folder

log = get_task_logger(__name__)
SETTINGS = get_settings()
# Share of the job's progress bar per phase: training, per-user chunks, publishing.
TRAIN_SHARE, USERS_SHARE = 60, 35


@celery_app.task(bind=True, name=TASK_RETRAIN, **time_limits(SETTINGS.retrain_time_limit))
def retrain(self: Task) -> dict:
    """Train a new version; returns at once (skipped) when another retrain holds the lock."""
    settings, r, job_id = get_settings(), get_redis(), self.request.id
    if r.hexists(keys.job_key(job_id), "version"):
        # A redelivery after the chord was sent (worker lost before the ack): the chord owns the
        # job id's result now, so store nothing and train nothing.
        log.warning("retrain %s redelivered after its hand-off: not training again", job_id)
        raise Ignore()
    record_job(r, job_id, "retrain")
    try:
        held = hold_retrain_lock(r, settings, job_id)
    except JobLost:  # redelivered after its worker died and the job was given up on
        log.warning("retrain %s was given up on when its worker died: not training", job_id)
        raise Ignore() from None
    if not held:
        running = retrain_lock(r, settings).holder()
        log.info("retrain %s skipped: %s is running", job_id, running)
        return {"status": "skipped", "running": running}
    try:
        with retrain_heartbeat(r, settings, job_id):
            return self.replace(_train_and_stage(self, r, job_id))
    except Ignore:  # replace() raises it once the chord is sent: the chord now owns the lock
        raise
    except BaseException:
        give_up(r, job_id)
        raise


def _train_and_stage(task: Task, r: redis.Redis, job_id: str) -> chord:
    settings, store = get_settings(), get_store()
    live = _live_base(store, versions.active_version(r))
    source = _training_source(settings, live)

    def on_stage(stage: str, fraction: float) -> None:
        _progress(task, job_id, "train:" + stage, TRAIN_SHARE * fraction)

    params = served_params(live)
    result = train(source, settings.out_dir, params, on_stage, previous=live)
    version = result.version
    store.commit_trained(result.folder)  # what the chunk tasks read, on whichever host
    versions.mark_staging(r, version)
    record_job(r, job_id, "retrain", staged=version)
    ids = user_ids(result.folder)
    write_catalog(r, result.folder, n_users=len(ids), extra_meta={"job_id": job_id})
    ranges = user_ranges(ids, settings.chunk_users)
    record_job(r, job_id, "retrain", version=version, chunks_total=len(ranges))
    _progress(task, job_id, "users", TRAIN_SHARE, version=version)
    log.info("retrain %s: %s, %d users in %d chunks", job_id, version, len(ids), len(ranges))
    return user_fanout(task.app, version, ranges, len(ids), job_id)


# What a retrain keeps of the live version: parameters and ratings, cluster ids and names.
LIVE_BASE_FILES = (*VersionFolder.TRAINING_RATINGS, *VersionFolder.CATALOG, VersionFolder.SUMMARY)


def _live_base(store: VersionStore, active: str | None) -> VersionFolder | None:
    """The live version's parameters and ratings, which the retrain keeps and reuses; None when
    the store has no complete copy of it (an unreachable store fails the job here)."""
    if active is None:
        return None
    try:
        return store.fetch(active, LIVE_BASE_FILES, COMPLETE)
    except VersionNotReady as error:
        log.warning("%s: training from scratch with the default parameters", error)
        return None


def _training_source(settings: Settings, live: VersionFolder | None) -> Path | Loader:
    """A snapshot of the database when there is one (reusing the live version's ratings of
    users unchanged since its snapshot), else the data folder."""
    if settings.database_url:
        return database_loader(settings.database_url, live)
    if settings.data_dir is None:
        raise DataError("MOVIEREC_DATA", "no data folder: set it to a MovieLens folder")
    return settings.data_dir


def served_params(folder: VersionFolder | None) -> PipelineParams:
    """The live version's training settings, so a retrain keeps the chosen recommender, k..."""
    if folder is None or not folder.metadata.is_file():
        if folder is not None:
            log.warning("%s is missing: retraining with the default parameters", folder.metadata)
        return PipelineParams(plots=False)
    return folder.params(plots=False)


@celery_app.task(
    bind=True,
    name=TASK_USERS_CHUNK,
    **time_limits(SETTINGS.chunk_time_limit),
    # FileNotFoundError: a cached file evicted by another process between fetch and read
    autoretry_for=(redis.ConnectionError, redis.TimeoutError, StoreUnavailable, FileNotFoundError),
    retry_backoff=True,
    max_retries=5,
)
def users_chunk(self: Task, version: str, user_lo: int, user_hi: int, job_id: str) -> dict:
    """Favorites and lists of users in [user_lo, user_hi] into the staged namespace and a part file.

    Idempotent: a redelivered or retried chunk rewrites the same hash fields and the same file.
    """
    r = get_redis()
    hold_lock(r, job_id)
    with retrain_heartbeat(r, get_settings(), job_id):
        folder = version_folder(version, VersionFolder.CATALOG + VersionFolder.TRAINING_RATINGS)
        lists = recommend_users(read_user_ratings(folder, user_lo, user_hi), catalog_for(folder))
        hold_lock(r, job_id)  # the lock lapsed meanwhile (a stalled worker): write nothing
        with tempfile.TemporaryDirectory() as parts:
            for path in write_user_part(Path(parts), user_lo, user_hi, lists):
                get_store().put_part(version, path)
        written = write_users(r, version, lists)
    done = record_chunk_done(r, job_id, user_lo, user_hi)
    total = int(r.hget(keys.job_key(job_id), "chunks_total") or done)
    _progress(self, job_id, "users", TRAIN_SHARE + USERS_SHARE * done / total, version=version)
    return {"users": written}


@celery_app.task(bind=True, name=TASK_PUBLISH, **time_limits(SETTINGS.chunk_time_limit))
def publish_version(
    self: Task, chunk_results: list[dict], version: str, n_users: int, job_id: str
) -> dict:
    """The chord callback, run only when every chunk succeeded: flip the pointer, free the lock."""
    settings, r = get_settings(), get_redis()
    pointers = versions.read_pointers(r)
    if pointers.active == version:  # redelivered after the flip: report it, flip nothing
        release_retrain_lock(r, settings, job_id)
        users = r.hlen(keys.VersionKeys(version).users)
        caught_up = catch_up(r, version, _stored_snapshot(version))
        return {"version": version, "previous": pointers.previous, "users": users} | caught_up
    try:
        hold_lock(r, job_id)
        _progress(self, job_id, "publish", TRAIN_SHARE + USERS_SHARE, version=version)
        chunk_users = sum(part["users"] for part in chunk_results)
        if chunk_users != n_users:
            raise PublishError(f"chunks computed {chunk_users} users, expected {n_users}")
        with retrain_heartbeat(r, settings, job_id):
            folder = complete_version(get_store(), version, n_users)
        snapshot = _snapshot_of(folder)  # read before the flip: after it, nothing may fail
        hold_lock(r, job_id)
        fence = versions.Fence(keys.RETRAIN_LOCK, job_id)  # a stall since: the flip refuses
        erased = erased_ids(worker_database())  # the snapshot may predate some
        summary = finish_publish(r, version, n_users, fence=fence, erased=erased)
        _mark_latest(version)
        summary["dropped"] = versions.cleanup(
            r, settings.grace_seconds, settings.job_deadline_seconds
        )
    except BaseException:
        give_up(r, job_id)
        raise
    release_retrain_lock(r, settings, job_id)
    summary |= catch_up(r, version, snapshot)
    summary["movies_placed_again"] = _place_again(version)
    log.info("published %s (previous %s)", version, summary["previous"])
    return summary


def complete_version(store: VersionStore, version: str, n_users: int) -> VersionFolder:
    """Merge the chunk parts in the store into the user files and seal the version complete;
    returns the version's folder on this host, with its metadata.

    A redelivered publish finds it complete and does nothing again."""
    try:
        store.manifest(version, COMPLETE)
        return store.fetch(version, (VersionFolder.METADATA,))
    except VersionNotReady:
        pass
    folder = store.fetch(version, (VersionFolder.METADATA,), TRAINED)
    with tempfile.TemporaryDirectory() as scratch:
        lists = merge_user_parts(store.fetch_parts(version, Path(scratch)))
    if len(lists.favorites) != n_users:  # a part the store's listing did not show yet
        raise PublishError(f"the chunk parts hold {len(lists.favorites)} users, not {n_users}")
    folder.write_users(lists)
    store.commit_complete(folder)
    store.drop_parts(version)
    return folder


def _snapshot_of(folder: VersionFolder) -> str | None:
    return folder.read_metadata().get("database", {}).get("pg_snapshot")


def _stored_snapshot(version: str) -> str | None:
    """The version's database snapshot, or None (and a warning) when the store does not answer."""
    try:
        return _snapshot_of(version_folder(version, (VersionFolder.METADATA,)))
    except StoreUnavailable as error:
        log.warning("catching up %s skipped (%s): the pending sweep will", version, error)
        return None


def _mark_latest(version: str) -> None:
    """After the flip a store failure must not fail the job: LATEST lags until the next one."""
    try:
        get_store().mark_latest(version)
    except StoreUnavailable as error:
        log.warning("LATEST not moved to %s: %s", version, error)


def _place_again(version: str) -> int:
    """Movies whose genres changed keep their place in the version now live, and hidden ones
    stay hidden even if Redis lost their copy; a failure here leaves them as they were until
    the next change or publish."""
    try:
        return carry_changes(version)
    except (redis.RedisError, DatabaseUnavailable) as error:
        log.warning("movie changes not carried to %s: %s", version, error)
        return 0


def catch_up(r: redis.Redis, version: str, snapshot: str | None) -> dict[str, int]:
    """Refresh the users whose ratings changed after the version's snapshot, in the version now
    live: nothing written during a retrain is lost. A failure here is left to the pending sweep."""
    db = worker_database()
    if snapshot is None or db is None:
        return {}
    try:
        with db.connection() as conn:
            settle(conn, snapshot)
            users = changed_after(conn, snapshot)
        for user_id in users:
            submit_refresh_user(celery_app, r, user_id)
    except (DatabaseUnavailable, redis.RedisError) as error:
        log.warning("catching up %s failed (%s): the pending sweep will", version, error)
        return {}
    return {"refreshed_after_snapshot": len(users)}


@celery_app.task(name=TASK_RELEASE_LOCK)
def release_lock(job_id: str) -> bool:
    """Error callback of the chord: a failed chunk must not keep retrains blocked until the TTL."""
    return give_up(get_redis(), job_id)


def give_up(r: redis.Redis, job_id: str) -> bool:
    """A failed job leaves nothing staged behind (the live version is never touched) and frees
    the lock for the next retrain."""
    staged = r.hget(keys.job_key(job_id), "staged")
    if staged is not None:
        versions.abandon(r, staged.decode())
    return release_retrain_lock(r, get_settings(), job_id)


def hold_lock(r: redis.Redis, job_id: str) -> None:
    """Prolong the job's lock, or stop: a job that lost it may not write or publish a version."""
    settings = get_settings()
    if not hold_retrain_lock(r, settings, job_id):
        lock = retrain_lock(r, settings)
        raise PublishError(
            f"retrain lock lost by job {job_id} (held by {lock.holder()}): not publishing"
        )


def _progress(task: Task, job_id: str, stage: str, percent: float, **extra: str) -> None:
    task.backend.store_result(
        job_id, {"stage": stage, "percent": round(percent, 1), **extra}, "PROGRESS"
    )
