"""Flask handlers over a fakeredis cache holding a hand-made version."""

from __future__ import annotations

import subprocess
import sys
import time

import fakeredis
import pytest
from kombu.exceptions import OperationalError

from cache import keys
from cache.lock import TokenLock
from cache.publish import publish_version_dir
from cache.reader import CacheReader
from cache.redis_client import WEB, redis_from_url
from tasks.heartbeats import record_heartbeat
from tests.serving_helpers import REPO, fake_version
from web import create_app

VERSION = "20260101T000000Z-aaaa"
TOKEN = "s3cret-token"


class RecordingCelery:
    """Stands in for the broker: records what would be queued (or fails like a dead broker)."""

    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[str, list | None, str | None]] = []
        self.fail = fail

    def send_task(self, name: str, args: list | None = None, task_id: str | None = None):
        if self.fail:
            raise OperationalError("Error 111 connecting to localhost:6379. Connection refused.")
        self.sent.append((name, args, task_id))


@pytest.fixture
def r() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis()


@pytest.fixture
def broker() -> RecordingCelery:
    return RecordingCelery()


def make_client(r, broker, **config):
    settings = {"REDIS": r, "API_TOKEN": TOKEN, "CELERY": broker, **config}
    return create_app(settings).test_client()


@pytest.fixture
def client(r, broker, tmp_path):
    publish_version_dir(r, fake_version(tmp_path / "models", VERSION))
    return make_client(r, broker)


@pytest.fixture
def empty_client(r, broker):
    return make_client(r, broker)


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_index_names_the_model(client):
    body = client.get("/").get_json()
    assert body["message"] == "Recommender System API is running"
    assert body["model_version"] == VERSION
    assert body["trained_at"] == "2026-01-01T00:00:00+00:00"
    assert body["counts"] == {"movies": 6, "users": 3, "clusters": 2}


def test_index_answers_before_anything_is_published(empty_client):
    response = empty_client.get("/")
    assert response.status_code == 200
    assert response.get_json()["model_version"] is None


def test_health(client, r):
    record_heartbeat(r, "celery@test", time.time())
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"
    assert response.get_json()["model_version"] == VERSION


def test_health_without_a_model_is_503(empty_client, r):
    record_heartbeat(r, "celery@test", time.time())
    response = empty_client.get("/health")
    assert response.status_code == 503
    assert response.get_json()["down"] == ["model"]
    assert "published" in response.get_json()["parts"]["model"]["error"]
    assert "movierec" in response.get_json()["parts"]["model"]["hint"]


def test_movie(client):
    expected = {
        "movieId": 20,
        "title": "Beta (2001)",
        "genres": "Comedy|Drama",
        "cluster": 0,
        "score": 3.9,
        "n_ratings": 1,
        "avg_rating": 3.5,
        "hidden": False,
    }
    assert client.get("/movie/20").get_json() == expected
    assert client.get("/movies/20").get_json() == expected  # the canonical path


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/movie/999", 404, "Movie not found"),
        ("/movie/abc", 400, "movie id must be a non-negative integer"),
        ("/movie/-1", 400, "movie id must be a non-negative integer"),
        ("/movie/1.5", 400, "movie id must be a non-negative integer"),
        ("/recommend/movie/999", 404, "Movie not found"),
        ("/recommend/user/999", 404, "User not found"),
        ("/recommend/user/x1", 400, "user id must be a non-negative integer"),
        ("/users/999", 404, "User not found"),
        ("/clusters/7", 404, "Cluster not found"),
        ("/recommend/user/1?n=0", 400, "n must be a positive integer"),
        ("/recommend/user/1?n=4", 400, "n must be an integer from 1 to 3"),
        ("/recommend/user/1?n=two", 400, "n must be a positive integer"),
        ("/recommend/movie/10?n=-1", 400, "n must be a positive integer"),
        ("/popular?n=4", 400, "n must be an integer from 1 to 3"),
        ("/clusters/1?n=4", 400, "n must be an integer from 1 to 3"),
        ("/no/such/page", 404, "Not Found"),
    ],
)
def test_errors_are_json_with_the_right_status(client, path, status, message):
    response = client.get(path)
    assert response.status_code == status
    assert response.is_json
    assert response.get_json()["error"].startswith(message)


def test_wrong_method_is_json_405_with_allow(client):
    response = client.delete("/movie/10")
    assert response.status_code == 405
    assert response.get_json() == {"error": "Method Not Allowed"}
    assert "GET" in response.headers["Allow"]


def test_similar_movies_are_ranked_and_stable(client):
    first = client.get("/recommend/movie/10?n=2").get_json()
    assert [(m["movieId"], m["title"], m["similarity"]) for m in first] == [
        (20, "Beta (2001)", 0.9),
        (30, "Gamma (2002)", 0.5),
    ]
    assert client.get("/recommend/movie/10?n=2").get_json() == first


def test_n_defaults_to_five_capped_by_the_cached_depth(client):
    assert len(client.get("/recommend/user/1").get_json()) == 3
    assert len(client.get("/recommend/user/1?n=1").get_json()) == 1


def test_user_recommendations_skip_rated_movies(client):
    rated = {1: {10, 40}, 2: {40, 50}, 3: {10, 20, 30}}
    for user, seen in rated.items():
        listed = client.get(f"/recommend/user/{user}?n=3").get_json()
        assert {m["movieId"] for m in listed}.isdisjoint(seen)
        assert all(m["title"] for m in listed)
    user2 = client.get("/recommend/user/2?n=3").get_json()
    assert [(m["movieId"], m["score"], m["source"]) for m in user2] == [
        (60, 0.91, "cluster"),
        (10, 0.82, "popular"),
        (20, 0.73, "popular"),
    ]


def test_user_profile(client):
    assert client.get("/users/2").get_json() == {
        "userId": 2,
        "favorite_cluster": 1,
        "n_ratings": 2,
        "cluster_counts": {"0": 0, "1": 2},
        "favorite_cluster_name": None,  # a version trained before clusters had names
        "favorite_cluster_description": None,
    }


def test_clusters(client):
    summaries = client.get("/clusters").get_json()
    assert [c["cluster"] for c in summaries] == [0, 1]
    one = client.get("/clusters/1?n=2").get_json()
    assert one["size"] == 3
    assert [m["movieId"] for m in one["movies"]] == [40, 50]


def test_popular(client):
    assert [m["movieId"] for m in client.get("/popular?n=3").get_json()] == [10, 40, 20]


def test_reads_without_a_model_are_503_with_a_hint(empty_client):
    for path in ("/movie/10", "/recommend/user/1", "/clusters", "/popular"):
        response = empty_client.get(path)
        assert response.status_code == 503
        assert "POST /jobs/retrain" in response.get_json()["hint"]


def test_unreachable_redis_is_503(broker):
    client = make_client(redis_from_url("redis://127.0.0.1:1/0", WEB), broker)
    for path in ("/movie/10", "/recommend/user/1"):
        response = client.get(path)
        assert response.status_code == 503
        assert "Redis" in response.get_json()["error"]
    health = client.get("/health")
    assert health.status_code == 503 and health.get_json()["down"] == ["redis"]
    assert client.get("/").status_code == 200


def test_unexpected_errors_are_json_500_without_details(client, monkeypatch):
    def broken(self, movie_id):
        raise KeyError("internal detail")

    monkeypatch.setattr(CacheReader, "movie", broken)
    response = client.get("/movie/10")
    assert response.status_code == 500
    assert response.get_json() == {"error": "internal server error"}


def test_retrain_needs_the_token(client, broker):
    assert client.post("/jobs/retrain").status_code == 401
    response = client.post("/jobs/retrain", headers=auth("wrong"))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert broker.sent == []


def test_job_endpoints_are_off_without_a_configured_token(r, broker):
    client = make_client(r, broker, API_TOKEN=None)
    response = client.post("/jobs/retrain", headers=auth(""))
    assert response.status_code == 503
    assert "MOVIEREC_API_TOKEN" in response.get_json()["error"]


def test_retrain_is_accepted_once_then_conflicts(client, broker, r):
    response = client.post("/jobs/retrain", headers=auth())
    assert response.status_code == 202
    job_id = response.get_json()["job_id"]
    assert response.headers["Location"] == f"/jobs/{job_id}"
    assert broker.sent == [("movierec.retrain", None, job_id)]
    assert TokenLock(r, keys.RETRAIN_LOCK, 60).holder() == job_id

    again = client.post("/jobs/retrain", headers=auth())
    assert again.status_code == 409
    assert again.get_json()["job_id"] == job_id
    assert again.get_json()["status_url"] == f"/jobs/{job_id}"
    assert len(broker.sent) == 1


def test_retrain_with_the_broker_down_is_503_and_frees_the_lock(r, tmp_path):
    publish_version_dir(r, fake_version(tmp_path / "models", VERSION))
    client = make_client(r, RecordingCelery(fail=True))
    response = client.post("/jobs/retrain", headers=auth())
    assert response.status_code == 503
    assert "queue" in response.get_json()["error"]
    assert TokenLock(r, keys.RETRAIN_LOCK, 60).holder() is None


def test_refresh_user_queues_a_job_for_known_users_only(client, broker):
    assert client.post("/users/2/refresh").status_code == 401
    assert client.post("/users/999/refresh", headers=auth()).status_code == 404
    response = client.post("/users/2/refresh", headers=auth())
    assert response.status_code == 202
    assert broker.sent == [("movierec.refresh_user", [2], response.get_json()["job_id"])]


def test_unknown_jobs_are_404(client):
    for job_id in ("no-such-job", "bad id!", "x" * 65):
        response = client.get(f"/jobs/{job_id}")
        assert response.status_code == 404
        assert response.get_json() == {"error": "Job not found"}


def test_web_process_does_not_load_pandas_or_the_pipeline():
    script = (
        "import sys; from web import create_app; create_app(); "
        "heavy = sorted(m for m in ('pandas', 'sklearn', 'pipeline.run') if m in sys.modules); "
        "print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_each_recommendation_says_where_it_came_from(client):
    listed = client.get("/recommend/user/1?n=3").get_json()
    assert listed[0]["reason"].startswith("from cluster 0 (")
    assert listed[0]["reason"].endswith("your top cluster by how many of its movies you rated")
    assert listed[2]["reason"] == "popular with everyone: your clusters have no unseen movies left"
