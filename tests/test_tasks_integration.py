"""A real redis-server and a real Celery worker process on the synthetic MovieLens folder; no
eager mode."""

from __future__ import annotations

import json
import time
import uuid

import pandas as pd
import pytest

from cache import keys, versions
from cache.redis_client import redis_from_url
from cache.settings import Settings
from pipeline.lists.users import load_catalog, read_user_ratings, recommend_users
from tasks.celery_app import TASK_REFRESH_USER, TASK_RETRAIN, make_celery
from tasks.fanout import user_fanout
from tasks.jobs import job_status, record_job, retrain_lock, submit_retrain
from tests.serving_helpers import redis_server, serving_env, spawn_cli, stop, wait_until
from web import create_app

pytestmark = pytest.mark.integration
CHUNK_USERS = 50  # the synthetic folder's 194 users -> 4 chunk tasks
JOB_TIMEOUT = 180


@pytest.fixture(scope="module")
def stack(small_data, tmp_path_factory):
    """Redis, a two-process worker, and a Celery app + Redis client for the test side."""
    tmp = tmp_path_factory.mktemp("integration")
    with redis_server(tmp / "redis") as url:
        env = serving_env(
            REDIS_URL=url,
            MOVIEREC_DATA=str(small_data),
            MOVIEREC_OUTPUT=str(tmp / "out"),
            MOVIEREC_CHUNK_USERS=str(CHUNK_USERS),
        )
        settings = Settings.from_env(env)
        app = make_celery(settings)
        worker = spawn_cli(["worker", "--concurrency", "2"], env, tmp / "worker.log")
        try:
            wait_until(lambda: app.control.ping(timeout=0.5), 60, "the worker to answer a ping")
            yield app, redis_from_url(url), settings
        finally:
            stop(worker)
            app.close()


def follow(app, r, job_id: str) -> tuple[dict, list[str]]:
    """Poll a job to its end; returns its final status and every stage seen on the way."""
    stages: list[str] = []
    deadline = time.monotonic() + JOB_TIMEOUT
    while time.monotonic() < deadline:
        status = job_status(app, r, job_id) or {"state": "QUEUED", "progress": None}
        if status["progress"] and (not stages or stages[-1] != status["progress"]["stage"]):
            stages.append(status["progress"]["stage"])
        if status["state"] in ("SUCCESS", "FAILURE"):
            return status, stages
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish in {JOB_TIMEOUT} s")


@pytest.fixture(scope="module")
def retrained(stack):
    app, r, _ = stack
    submission = submit_retrain(app, r)
    assert submission.accepted
    status, stages = follow(app, r, submission.job_id)
    return status, stages


def test_retrain_fans_out_in_chunks_then_publishes(stack, retrained, small_shape):
    _, r, settings = stack
    status, stages = retrained
    assert status["state"] == "SUCCESS", status["error"]
    version = status["result"]["version"]
    assert status["result"]["users"] == small_shape.users
    chunks = -(-small_shape.users // CHUNK_USERS)
    assert chunks > 1 and status["chunks"] == {"done": chunks, "total": chunks}
    assert any(stage.startswith("train:") for stage in stages) and stages[-1] == "done"

    assert versions.active_version(r) == version
    assert r.hlen(keys.VersionKeys(version).users) == small_shape.users
    assert retrain_lock(r, settings).holder() is None
    # Every message was acknowledged, the replaced retrain included: nothing is redelivered
    # when the visibility timeout passes.
    wait_until(lambda: r.hlen("unacked") == 0, 10, "all messages to be acknowledged")
    models = settings.output.models
    assert models.latest_id() == version
    assert not models.version(version).parts.exists()


def test_chunked_lists_equal_one_pass_over_all_users(stack, retrained):
    _, _, settings = stack
    folder = settings.output.models.version(retrained[0]["result"]["version"])
    lists = recommend_users(read_user_ratings(folder, 0, 2**31), load_catalog(folder))
    saved = folder.read_users()
    pd.testing.assert_frame_equal(saved.favorites, lists.favorites)
    pd.testing.assert_frame_equal(saved.recommendations, lists.recommendations)


def test_published_lists_are_served_without_rated_movies(
    stack, retrained, small_ratings, small_shape, known
):
    _, r, _ = stack
    client = create_app({"REDIS": r, "API_TOKEN": None}).test_client()
    ratings = small_ratings
    per_user = ratings.groupby("userId").size()
    lightest, heaviest = int(per_user.idxmin()), int(per_user.idxmax())
    for user in sorted({1, lightest, heaviest, small_shape.users}):
        listed = client.get(f"/recommend/user/{user}?n=50").get_json()
        assert len(listed) == 50
        seen = set(ratings.loc[ratings["userId"] == user, "movieId"])
        assert seen.isdisjoint(m["movieId"] for m in listed)
        assert all(m["title"] for m in listed)
    assert client.get(f"/movie/{known.movie}").get_json()["title"] == known.title


def test_two_concurrent_retrains_run_once(stack, retrained):
    app, r, _ = stack
    before = versions.active_version(r)
    jobs = [str(uuid.uuid4()) for _ in range(2)]
    for job_id in jobs:
        app.send_task(TASK_RETRAIN, task_id=job_id)
    results = [follow(app, r, job_id)[0] for job_id in jobs]
    assert all(result["state"] == "SUCCESS" for result in results)
    skipped = [res["result"] for res in results if res["result"].get("status") == "skipped"]
    published = [res["result"] for res in results if "version" in res["result"]]
    assert len(skipped) == 1 and len(published) == 1
    assert skipped[0]["running"] in jobs
    assert published[0]["previous"] == before
    assert versions.active_version(r) == published[0]["version"]


def test_a_failed_chunk_fails_the_job_frees_the_lock_and_keeps_the_pointer(stack, retrained):
    app, r, settings = stack
    active = versions.active_version(r)
    job_id = str(uuid.uuid4())
    assert retrain_lock(r, settings).acquire(job_id)
    record_job(r, job_id, "retrain")
    missing = "20990101T000000000000Z-deadbeef"  # no such version folder: the chunk fails
    ranges = [(1, 300), (301, 610)]  # user ranges of a version that does not exist
    user_fanout(app, missing, ranges, 610, job_id).apply_async(task_id=job_id)
    status, _ = follow(app, r, job_id)
    assert status["state"] == "FAILURE"
    wait_until(lambda: retrain_lock(r, settings).holder() is None, 30, "the lock to be released")
    assert versions.active_version(r) == active


def test_beat_starts_and_stops_cleanly(stack, tmp_path):
    _, _, settings = stack
    env = serving_env(REDIS_URL=settings.broker_url, MOVIEREC_OUTPUT=str(settings.out_dir))
    log = tmp_path / "beat.log"
    beat = spawn_cli(["beat"], env, log)
    wait_until(lambda: "beat: Starting" in log.read_text(), 30, "beat to start")
    assert stop(beat) == 0
    assert "Traceback" not in log.read_text()


def test_refresh_user_rewrites_one_entry(stack, retrained):
    app, r, _ = stack
    users_key = keys.VersionKeys(versions.active_version(r)).users
    original = json.loads(r.hget(users_key, 7))
    r.hset(users_key, 7, json.dumps({**original, "movies": [], "sources": ""}))
    job_id = str(uuid.uuid4())
    record_job(r, job_id, "refresh_user")
    app.send_task(TASK_REFRESH_USER, args=[7], task_id=job_id)
    status, _ = follow(app, r, job_id)
    assert status["state"] == "SUCCESS", status["error"]
    assert json.loads(r.hget(users_key, 7)) == original
