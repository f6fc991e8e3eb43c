"""What the web tier answers while Redis or PostgreSQL does not answer in time: stale answers
within their age, fast 503s that say what happened, and the metrics that count them."""

from __future__ import annotations

import time

import fakeredis
import pytest

from cache.publish import publish_version_dir
from db.database import DatabaseBusy, DatabaseTimeout
from tests.serving_helpers import fake_version
from tests.test_web_api import TOKEN, VERSION, RecordingCelery, auth
from web import create_app, state
from web.limits import ServingLimits


@pytest.fixture
def server() -> fakeredis.FakeServer:
    return fakeredis.FakeServer()


def make_client(server, tmp_path, **limits):
    r = fakeredis.FakeRedis(server=server)
    publish_version_dir(r, fake_version(tmp_path / "models", VERSION))
    config = {"REDIS": r, "API_TOKEN": TOKEN, "CELERY": RecordingCelery()}
    return create_app(config | {"LIMITS": ServingLimits(**limits)}).test_client()


def test_while_redis_fails_a_recent_answer_is_served_marked_stale(server, tmp_path):
    client = make_client(server, tmp_path)
    fresh = client.get("/users/1")
    assert fresh.status_code == 200 and "Cache-Status" not in fresh.headers
    listed = client.get("/recommend/user/1?n=3").get_json()
    server.connected = False
    stale = client.get("/users/1")
    assert stale.status_code == 200
    assert stale.get_json() == fresh.get_json() | {"stale": True}
    assert stale.headers["Cache-Status"].startswith("movierec; hit; ttl=")
    again = client.get("/recommend/user/1?n=3")  # an array: stale in the header only
    assert again.get_json() == listed and "Cache-Status" in again.headers
    never_read = client.get("/users/2")
    assert never_read.status_code == 503 and never_read.headers["Retry-After"] == "1"
    assert client.get("/recommend/user/1?n=4").status_code == 503  # another question
    server.connected = True
    assert "Cache-Status" not in client.get("/users/1").headers


def test_a_stale_answer_is_never_older_than_its_stated_age(server, tmp_path):
    client = make_client(server, tmp_path, stale_seconds=0.2)
    assert client.get("/users/1").status_code == 200
    server.connected = False
    assert client.get("/users/1").status_code == 200
    time.sleep(0.3)  # past the age, an erased user or a hidden movie is gone from here too
    assert client.get("/users/1").status_code == 503


def test_with_no_stale_age_nothing_is_kept(server, tmp_path):
    client = make_client(server, tmp_path, stale_seconds=0)
    assert client.get("/users/1").status_code == 200
    server.connected = False
    assert client.get("/users/1").status_code == 503


class StuckDatabase:
    """Fails as the real one does when the server is frozen or its slots are taken."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def connection(self, slot: bool = True):
        raise self.error


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (DatabaseTimeout("the database did not answer in time", sent=True), "is unknown"),
        (DatabaseTimeout("the database did not answer in time", sent=False), "nothing was"),
        (DatabaseBusy("every connection to the database is busy"), "nothing was stored"),
    ],
)
def test_a_write_that_timed_out_says_whether_its_outcome_is_known(server, tmp_path, error, said):
    client = make_client(server, tmp_path)
    client.application.extensions[state.DATABASE] = StuckDatabase(error)
    response = client.post("/users/1/ratings", json=[{"movieId": 1, "rating": 4}], headers=auth())
    body = response.get_json()
    assert response.status_code == 503 and said in body["error"]
    assert ("outcome" in body) == (said == "is unknown")
    assert response.headers["Retry-After"] == "1"


def test_health_names_a_dependency_that_does_not_answer_in_time(server, tmp_path):
    client = make_client(server, tmp_path)
    client.application.extensions[state.DATABASE] = StuckDatabase(
        DatabaseTimeout("the database did not answer in time", sent=False)
    )
    body = client.get("/health").get_json()
    assert body["degraded"] == ["database"] and body["parts"]["database"]["status"] == "degraded"
    assert "database" not in body["down"]


def test_the_limits_come_from_the_environment():
    env = {
        "MOVIEREC_READ_DEADLINE": "0.5",
        "MOVIEREC_WRITE_DEADLINE": "3",
        "MOVIEREC_STALE_SECONDS": "0",
    }
    limits = ServingLimits.from_env(env)
    assert (limits.read_seconds, limits.write_seconds) == (0.5, 3.0)
    assert limits.for_method("GET") <= 0.5 and limits.for_method("DELETE") <= 3.0
    assert limits.stale_seconds == 0 and limits.database_slots == 1


def metric(text: str, name: str) -> float:
    """The value of the sample `name` (with its labels) in a Prometheus exposition."""
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name)]
    assert values, f"{name} not in /metrics"
    return values[0]


def test_metrics_count_timeouts_open_breakers_and_stale_answers(server, tmp_path):
    client = make_client(server, tmp_path)
    before = client.get("/metrics").get_data(as_text=True)
    client.get("/users/1")
    server.connected = False
    client.get("/users/1")  # stale
    client.application.extensions[state.BREAKERS].redis.timed_out()
    after = client.get("/metrics").get_data(as_text=True)
    assert metric(after, "movierec_stale_answers_total") >= 1 + (
        metric(before, "movierec_stale_answers_total")
        if "movierec_stale_answers_total" in before
        else 0
    )
    redis = '{dependency="redis"}'
    assert metric(after, "movierec_dependency_timeouts_total" + redis) >= 1
    assert metric(after, "movierec_breaker_openings_total" + redis) >= 1
    assert metric(after, "movierec_breakers_open" + redis) == 1
