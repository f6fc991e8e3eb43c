"""Live data through real PostgreSQL, Redis and a Celery worker process: a rating posted over
HTTP reaches the user's cached list, bursts coalesce, and nothing written during a retrain is
lost when the new version goes live."""

from __future__ import annotations

import json
import time

import psycopg
import pytest

from cache import keys, versions
from cache.lock import TokenLock
from cache.redis_client import redis_from_url
from cache.settings import Settings
from db.database import Database
from pipeline.artifacts import ModelsFolder
from store.versions import open_store
from tasks.celery_app import make_celery
from tasks.jobs import job_status, submit_retrain
from tests.serving_helpers import servers_with, serving_env, spawn_cli, stop, wait_until
from web import create_app

pytestmark = pytest.mark.integration
TOKEN = "live-token"
JOB_TIMEOUT = 180
FRESH_SECONDS = 2.0  # the end-to-end goal is 1 s at p95; this bound only catches a stall


@pytest.fixture(scope="module")
def live(small_data, tmp_path_factory):
    """PostgreSQL with the synthetic folder, Redis, a worker; the web app; a first version
    trained from the database snapshot."""
    tmp = tmp_path_factory.mktemp("live")
    with servers_with(small_data, tmp) as (db_url, redis_url):
        env = serving_env(
            REDIS_URL=redis_url,
            MOVIEREC_DATABASE_URL=db_url,
            MOVIEREC_OUTPUT=str(tmp / "out"),
            MOVIEREC_CHUNK_USERS="150",
        )
        settings = Settings.from_env(env)
        app = make_celery(settings)
        worker = spawn_cli(["worker", "--concurrency", "2"], env, tmp / "worker.log")
        database = Database(db_url)
        try:
            wait_until(lambda: app.control.ping(timeout=0.5), 60, "the worker to answer a ping")
            r = redis_from_url(redis_url)
            config = {"REDIS": r, "CELERY": app, "DATABASE": database, "API_TOKEN": TOKEN}
            config["STORE"] = open_store(settings.store)
            client = create_app(config).test_client()
            live = Live(app, r, settings, client)
            assert live.retrain()["state"] == "SUCCESS"
            yield live
        finally:
            stop(worker)
            database.close()
            app.close()


class Live:
    def __init__(self, app, r, settings: Settings, client) -> None:
        self.app, self.r, self.settings, self.client = app, r, settings, client

    def rate(self, user: int, ratings: dict[int, float]) -> dict:
        body = [{"movieId": movie, "rating": value} for movie, value in ratings.items()]
        response = self.client.post(
            f"/users/{user}/ratings", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    def listed(self, user: int) -> list[int] | None:
        response = self.client.get(f"/recommend/user/{user}?n=50")
        return [m["movieId"] for m in response.get_json()] if response.status_code == 200 else None

    def wait_list_without(self, user: int, rated: set[int]) -> list[int]:
        def ready() -> list[int] | None:
            found = self.listed(user)
            return found if found and rated.isdisjoint(found) else None

        return wait_until(ready, FRESH_SECONDS, f"user {user}'s list without {sorted(rated)}", 0.02)

    def retrain(self, during=None) -> dict:
        """A retrain to its end; `during(stage)` runs once the snapshot has been read."""
        submission = submit_retrain(self.app, self.r)
        assert submission.accepted
        deadline, called = time.monotonic() + JOB_TIMEOUT, False
        while time.monotonic() < deadline:
            status = job_status(self.app, self.r, submission.job_id)
            stage = (status or {}).get("progress") or {}
            if during and not called and stage.get("stage") not in (None, "started", "train:read"):
                during(stage["stage"])
                called = True
            if status and status["state"] in ("SUCCESS", "FAILURE"):
                return status
            time.sleep(0.02)
        raise AssertionError("the retrain did not finish")


def test_the_version_records_the_snapshot_it_read(live, small_shape):
    version = versions.active_version(live.r)
    metadata = ModelsFolder(live.settings.out_dir / "models").version(version).read_metadata()
    snapshot = metadata["database"]
    assert snapshot["counts"] == {
        "movies": small_shape.movies,
        "ratings": small_shape.ratings,
        "tags": small_shape.tags,
    }
    assert snapshot["highest_updated_at"] and snapshot["pg_snapshot"]
    assert metadata["counts"]["users"] == small_shape.users


def test_a_new_user_gets_a_list_without_what_they_rated(live, known):
    rated = known.first_ratings(5.0, 5.0, 4.5, 4.0, 4.5, 3.0, 4.0, 3.5)
    live.rate(810001, rated)
    assert len(live.wait_list_without(810001, set(rated))) == 50


def test_rating_the_top_movie_removes_it(live):
    top = live.listed(1)[0]
    live.rate(1, {top: 2.5})
    assert top not in live.wait_list_without(1, {top})


def test_a_burst_waits_for_the_running_refresh_then_one_refresh_sees_it_all(live, known):
    """While another refresh of the user holds the lock, nothing else runs for them, every
    write of the burst joins the one queued refresh, and that refresh sees the last write."""
    user, movies = 810002, known.most_rated[:15]
    running = TokenLock(live.r, keys.refresh_lock_key(user), 60)
    assert running.acquire("a refresh already running")
    jobs = {live.rate(user, {movie: 4.0})["refresh"]["job_id"] for movie in movies}
    time.sleep(0.5)
    assert live.listed(user) is None  # nothing ran beside the one holding the lock
    assert len(jobs) == 1
    running.release("a refresh already running")
    live.wait_list_without(user, set(movies))
    entry = json.loads(live.r.hget(keys.VersionKeys(versions.active_version(live.r)).users, user))
    assert entry["n_ratings"] == len(movies)


def test_ratings_written_during_a_retrain_are_in_the_new_version(live, known):
    user, rated = 810003, known.first_ratings(5.0, 4.5, 5.0)
    before = versions.active_version(live.r)
    status = live.retrain(during=lambda stage: live.rate(user, rated))
    assert status["state"] == "SUCCESS", status["error"]
    after = versions.active_version(live.r)
    assert after != before
    assert status["result"]["refreshed_after_snapshot"] >= 1
    wait_until(
        lambda: live.r.hexists(keys.VersionKeys(after).users, user), FRESH_SECONDS, "catch-up"
    )
    assert rated.keys().isdisjoint(live.wait_list_without(user, set(rated)))


def test_a_retrain_counts_new_users_and_new_movies(live, known, small_shape):
    movie = live.client.post(
        "/movies",
        json={"title": "Newcomer (2026)", "genres": "Drama"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    ).get_json()
    live.rate(810004, {movie["movieId"]: 5.0, known.movie: 4.0})
    before = versions.active_version(live.r)
    status = live.retrain()
    version = status["result"]["version"]
    metadata = ModelsFolder(live.settings.out_dir / "models").version(version).read_metadata()
    assert metadata["counts"]["movies"] == small_shape.movies + 1
    assert metadata["counts"]["users"] > small_shape.users
    snapshot = metadata["database"]
    assert snapshot["reused"]["version"] == before  # only the changed users were read
    assert snapshot["reused"]["users_read"] >= 1
    with psycopg.connect(live.settings.database_url) as conn:
        (stored,) = conn.execute("SELECT count(*) FROM ratings").fetchone()
    assert snapshot["counts"]["ratings"] == stored
    assert live.client.get(f"/movie/{movie['movieId']}").get_json()["cluster"] is not None
