"""The write endpoints over a real PostgreSQL server and a fakeredis cache of a real version."""

from __future__ import annotations

import json
import socket
import time

import fakeredis
import psycopg
import pytest

from cache import keys
from cache.publish import publish_version_dir
from cache.settings import get_settings
from db.database import Database
from db.importer import import_folder
from service.embedded_postgres import running_postgres
from store.versions import store_for_output
from tasks.celery_app import TASK_REFRESH_USER
from tests.test_web_api import TOKEN, RecordingCelery, auth
from web import create_app, state
from web.limits import ServingLimits

pytestmark = pytest.mark.integration
NEW_USER = 800001


@pytest.fixture(scope="module")
def database(small_data, tmp_path_factory):
    with running_postgres(tmp_path_factory.mktemp("pg")) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            import_folder(conn, small_data, tmp_path_factory.mktemp("out"), progress=False)
        db = Database(url)
        yield db
        db.close()


@pytest.fixture(scope="module")
def published(small_run):
    r = fakeredis.FakeRedis()
    publish_version_dir(r, small_run.folder)
    return r


@pytest.fixture
def broker() -> RecordingCelery:
    return RecordingCelery()


@pytest.fixture
def client(small_run, published, database, broker):
    store = store_for_output(small_run.folder.path.parents[1])
    store.commit(small_run.folder)  # as `movierec pipeline` does: the web host fetches the model
    config = {"REDIS": published, "API_TOKEN": TOKEN, "CELERY": broker, "STORE": store}
    return create_app(config | {"DATABASE": database}).test_client()


def post_ratings(client, user, body, token: str = TOKEN):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(f"/users/{user}/ratings", data=data, headers=auth(token))


def stored(database: Database, user: int) -> int:
    with database.connection() as conn:
        return conn.execute("SELECT count(*) FROM ratings WHERE user_id = %s", (user,)).fetchone()[
            0
        ]


def test_ratings_are_committed_then_one_refresh_is_queued(
    client, database, broker, published, known
):
    first, *others = known.most_rated[:4]
    body = [{"movieId": m, "rating": 4.5} for m in others]
    response = post_ratings(client, NEW_USER, body)
    assert response.status_code == 201
    answer = response.get_json()
    assert (answer["received"], answer["stored"]) == (3, 3)
    assert answer["refresh"]["state"] == "queued"
    assert stored(database, NEW_USER) == 3
    # A burst before the refresh starts joins the queued one.
    again = post_ratings(client, NEW_USER, [{"movieId": first, "rating": 2.0}]).get_json()
    assert again["refresh"]["job_id"] == answer["refresh"]["job_id"]
    assert broker.sent == [(TASK_REFRESH_USER, [NEW_USER], answer["refresh"]["job_id"])]
    published.delete(keys.refresh_queued_key(NEW_USER))


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ([{"movieId": 1, "rating": 4.3}], 400, "half stars"),
        ([{"movieId": 1, "rating": 5.5}], 400, "from 0.5 to 5.0"),
        ([{"movieId": 1, "rating": 0}], 400, "from 0.5 to 5.0"),
        ([{"movieId": 1, "rating": "4"}], 400, "must be a number"),
        ([{"movieId": "1", "rating": 4}], 400, "must be an integer"),
        ([{"movieId": 1.5, "rating": 4}], 400, "must be an integer"),
        ([{"movieId": True, "rating": 4}], 400, "must be an integer"),
        ([{"rating": 4}], 400, "'movieId' is missing"),
        ([{"movieId": 1}], 400, "'rating' is missing"),
        ([{"movieId": 1, "rating": 4, "stars": 5}], 400, "'stars' is not a field"),
        ([{"movieId": 1, "rating": 4, "timestamp": -1}], 400, "timestamp"),
        ([{"movieId": 1, "rating": 4}, 7], 400, "item 1 must be an object"),
        ({"movieId": 1, "rating": 4}, 400, "JSON array"),
        ([], 400, "non-empty"),
        ("[{'movieId': 1}]", 400, "not valid JSON"),
        ([{"movieId": 1, "rating": 4}] * 1001, 413, "at most 1000"),
    ],
)
def test_bad_input_names_the_item_and_stores_nothing(client, database, body, status, fragment):
    user = 800002
    response = post_ratings(client, user, body)
    assert response.status_code == status
    assert fragment in response.get_json()["error"]
    assert stored(database, user) == 0


def test_an_unknown_movie_is_422_naming_its_item_and_stores_nothing(client, database, known):
    user = 800002
    body = [{"movieId": known.movie, "rating": 4}, {"movieId": 424242, "rating": 3}]
    response = post_ratings(client, user, body)
    assert response.status_code == 422 and "424242" in response.get_json()["error"]
    assert response.get_json()["items"] == [1]  # the offending item, by its place
    assert stored(database, user) == 0


def test_a_body_over_the_size_limit_is_refused(client):
    response = post_ratings(client, 800003, b" " * (300 * 1024))
    assert response.status_code == 413 and response.is_json


@pytest.mark.parametrize("user", ["abc", "-1", "0", "4294967296"])
def test_a_bad_user_id_in_the_path_is_400(client, user):
    assert post_ratings(client, user, [{"movieId": 1, "rating": 4}]).status_code == 400


def test_writes_need_the_token(client, database):
    assert (
        post_ratings(client, 800004, [{"movieId": 1, "rating": 4}], token="wrong").status_code
        == 401
    )
    assert client.delete("/users/1/ratings/1").status_code == 401
    assert client.post("/movies", json={"title": "X"}).status_code == 401
    assert stored(database, 800004) == 0


def test_list_newest_first_then_delete(client, database, known):
    user, (older, newer) = 800005, known.most_rated[:2]
    body = [
        {"movieId": older, "rating": 3.0, "timestamp": 10},
        {"movieId": newer, "rating": 4.0, "timestamp": 20},
    ]
    assert post_ratings(client, user, body).status_code == 201
    page = client.get(f"/users/{user}/ratings?limit=1").get_json()
    assert page["total"] == 2 and [r["movieId"] for r in page["ratings"]] == [newer]
    assert client.get(f"/users/{user}/ratings?limit=0").status_code == 400
    assert client.delete(f"/users/{user}/ratings/{newer}", headers=auth()).status_code == 204
    assert client.delete(f"/users/{user}/ratings/{newer}", headers=auth()).status_code == 404
    assert client.get(f"/users/{user}/ratings").get_json()["total"] == 1


def test_a_new_movie_gets_a_cluster_and_is_served_at_once(client, database):
    response = client.post(
        "/movies",
        json={"title": " Brand New (2026) ", "genres": "Comedy|Romance|Comedy"},
        headers=auth(),
    )
    assert response.status_code == 201
    movie = response.get_json()
    assert movie["title"] == "Brand New (2026)" and movie["genres"] == "Comedy|Romance"
    assert isinstance(movie["cluster"], int) and "next retrain" in movie["note"]
    served = client.get(f"/movie/{movie['movieId']}").get_json()
    assert (served["title"], served["cluster"]) == (movie["title"], movie["cluster"])
    assert (
        post_ratings(client, 800006, [{"movieId": movie["movieId"], "rating": 5}]).status_code
        == 201
    )


@pytest.mark.parametrize(
    "body", [{"genres": "Comedy"}, {"title": ""}, {"title": 5}, {"title": "X", "genres": 3}, ["X"]]
)
def test_a_bad_movie_is_400(client, body):
    assert client.post("/movies", json=body, headers=auth()).status_code == 400


# JSON escapes a client may send: PostgreSQL's text cannot hold a NUL, UTF-8 no lone surrogate.
BAD_TEXTS = [("NUL character", r"A\u0000B"), ("unpaired surrogate", r"\ud800 title")]


@pytest.mark.parametrize(("problem", "text"), BAD_TEXTS)
@pytest.mark.parametrize("field", ["title", "genres"])
def test_text_a_database_cannot_hold_is_400_naming_the_field(client, problem, text, field):
    fields = {"title": '"Fine (2026)"', "genres": '"Comedy"'} | {field: f'"{text}"'}
    raw = "{" + ", ".join(f'"{name}": {value}' for name, value in fields.items()) + "}"
    response = client.post("/movies", data=raw, headers=auth())
    body = response.get_json()
    assert response.status_code == 400 and problem in body["error"], body
    assert body["field"] == field


@pytest.mark.parametrize(("problem", "text"), BAD_TEXTS)
def test_text_in_a_rating_is_400_naming_the_item(client, database, problem, text):
    raw = f'[{{"movieId": 1, "rating": 4}}, {{"movieId": 1, "rating": 4, "note": "{text}"}}]'
    response = post_ratings(client, 800012, raw)
    body = response.get_json()
    assert response.status_code == 400 and problem in body["error"], body
    assert (body["item"], body["field"]) == (1, "note")
    assert stored(database, 800012) == 0


def test_without_redis_the_rating_is_kept_and_the_refresh_is_pending(published, database, known):
    broker = RecordingCelery(fail=True)
    config = {"REDIS": published, "API_TOKEN": TOKEN, "CELERY": broker}
    client = create_app(config | {"DATABASE": database}).test_client()
    response = post_ratings(client, 800007, [{"movieId": known.movie, "rating": 4}])
    assert response.status_code == 201
    assert response.get_json()["refresh"]["state"] == "pending"
    assert stored(database, 800007) == 1


def test_without_postgres_writes_are_503_and_reads_still_work(published):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = Database(f"postgresql://postgres:x@127.0.0.1:{port}/postgres")
    config = {"REDIS": published, "API_TOKEN": TOKEN, "CELERY": RecordingCelery()}
    client = create_app(config | {"DATABASE": down}).test_client()
    response = post_ratings(client, 1, [{"movieId": 1, "rating": 4}])
    assert response.status_code == 503 and "database" in response.get_json()["error"]
    assert client.get("/recommend/user/1").status_code == 200


def test_a_write_held_by_a_lock_answers_503_in_time_and_stores_nothing(published, database):
    impatient = Database(database.url, statement_timeout=0.5)
    config = {"REDIS": published, "API_TOKEN": TOKEN, "CELERY": RecordingCelery()}
    client = create_app(config | {"DATABASE": impatient}).test_client()
    with psycopg.connect(database.url) as holder:  # as an import's long transaction would
        holder.execute("SET idle_in_transaction_session_timeout = '20s'")  # if the write waits
        holder.execute("LOCK TABLE ratings IN EXCLUSIVE MODE")
        started = time.monotonic()
        response = post_ratings(client, 800011, [{"movieId": 1, "rating": 4}])
        waited = time.monotonic() - started
    impatient.close()
    assert response.status_code == 503 and "nothing was stored" in response.get_json()["error"]
    assert waited < 30  # not held until the lock goes: a bound, not a timing claim
    assert stored(database, 800011) == 0


def test_the_web_tier_bounds_its_statements(published, monkeypatch):
    monkeypatch.setenv("MOVIEREC_DATABASE_URL", "postgresql://postgres:x@127.0.0.1:1/postgres")
    get_settings.cache_clear()
    try:
        app = create_app({"REDIS": published, "API_TOKEN": TOKEN, "CELERY": RecordingCelery()})
    finally:
        get_settings.cache_clear()
    assert app.extensions[state.DATABASE].statement_timeout == ServingLimits().write_seconds


def test_without_a_database_writes_say_what_to_set(published):
    config = {"REDIS": published, "API_TOKEN": TOKEN, "CELERY": RecordingCelery()}
    response = post_ratings(create_app(config).test_client(), 1, [{"movieId": 1, "rating": 4}])
    assert response.status_code == 503 and "MOVIEREC_DATABASE_URL" in response.get_json()["error"]


def test_a_new_movie_sent_again_with_its_idempotency_key_is_added_once(client, database):
    body = {"title": "Sent Twice (2026)", "genres": "Drama"}
    key = {"Idempotency-Key": "movie-7f3a"}
    first = client.post("/movies", json=body, headers=auth() | key)
    again = client.post("/movies", json=body, headers=auth() | key)  # after a timeout, say
    assert first.status_code == again.status_code == 201
    assert first.get_json()["movieId"] == again.get_json()["movieId"]
    with database.connection() as conn:
        found = conn.execute("SELECT count(*) FROM movies WHERE title = %s", (body["title"],))
        assert found.fetchone() == (1,)
    other = client.post("/movies", json={"title": "Another (2026)"}, headers=auth() | key)
    assert other.status_code == 422 and "already added" in other.get_json()["error"]
    bad = client.post("/movies", json=body, headers=auth() | {"Idempotency-Key": "a b"})
    assert bad.status_code == 400
