"""DELETE /users/<id> over a real PostgreSQL and a cache of a real version in fakeredis: the
user leaves every table but the tombstone, every version held in Redis, and every key."""

from __future__ import annotations

import logging

import fakeredis
import pytest

from cache import keys
from cache.erasure import forget_user, versions_held
from cache.publish import publish_version_dir
from cache.writer import write_users
from tasks.jobs import record_job
from tests.test_web_api import TOKEN, RecordingCelery, auth
from tests.test_web_writes import database, post_ratings, stored  # noqa: F401  (fixture)
from web import create_app

pytestmark = pytest.mark.integration
OTHER = "20260303T000000Z-cccc"  # a second version held in Redis, as a staged one would be


@pytest.fixture
def r(small_run) -> fakeredis.FakeRedis:
    r = fakeredis.FakeRedis()
    publish_version_dir(r, small_run.folder)
    write_users(r, OTHER, small_run.folder.read_users())
    return r


@pytest.fixture
def client(r, database):  # noqa: F811
    config = {"REDIS": r, "API_TOKEN": TOKEN, "CELERY": RecordingCelery()}
    return create_app(config | {"DATABASE": database}).test_client()


def a_user_with_ratings(client, known) -> int:
    user = 1  # a user of the data set: in the database and in both versions
    assert post_ratings(client, user, [{"movieId": known.movie, "rating": 4}]).status_code == 201
    return user


def test_an_erased_user_leaves_every_version_key_and_table(client, r, database, known, caplog):  # noqa: F811
    user = a_user_with_ratings(client, known)
    record_job(r, "refresh-job", "refresh_user", user_id=user)
    r.set(keys.celery_result_key("refresh-job"), b"{}")
    assert all(r.hexists(keys.VersionKeys(v).users, user) for v in versions_held(r))
    with caplog.at_level(logging.INFO):
        answer = client.delete(f"/users/{user}", headers=auth() | {"X-Request-ID": "req-7"})
    assert answer.status_code == 204 and answer.headers["X-Request-ID"] == "req-7"
    assert not any(r.hexists(keys.VersionKeys(v).users, user) for v in versions_held(r))
    assert not r.exists(keys.job_key("refresh-job"), keys.celery_result_key("refresh-job"))
    assert r.exists(keys.refresh_queued_key(user)) == 0
    assert client.get(f"/users/{user}").status_code == 404
    assert client.get(f"/recommend/user/{user}").status_code == 404
    assert stored(database, user) == 0
    logged = [m for m in caplog.messages if "erasure" in m]
    assert logged == ["erasure req-7: erased"]  # the request, never the user
    again = client.delete(f"/users/{user}", headers=auth())
    assert again.status_code == 204  # a retry is safe
    refused = post_ratings(client, user, [{"movieId": known.movie, "rating": 4}])
    assert refused.status_code == 410 and "erased" in refused.get_json()["error"]


def test_erasing_a_user_never_seen_is_404_and_leaves_no_tombstone(client, database):  # noqa: F811
    answer = client.delete("/users/3999999", headers=auth())
    assert answer.status_code == 404 and answer.is_json
    with database.connection() as conn:
        found = conn.execute("SELECT count(*) FROM erased_users WHERE user_id = 3999999")
        assert found.fetchone() == (0,)


def test_erasure_needs_the_token_and_a_valid_id(client):
    assert client.delete("/users/5").status_code == 401
    assert client.delete("/users/abc", headers=auth()).status_code == 400


def test_a_failed_cache_cleanup_says_so_and_its_retry_finishes_it(r, database, known):  # noqa: F811
    server = fakeredis.FakeServer()
    broken = fakeredis.FakeRedis(server=server)
    config = {"REDIS": broken, "API_TOKEN": TOKEN, "CELERY": RecordingCelery()}
    client = create_app(config | {"DATABASE": database}).test_client()
    user = 2
    server.connected = False
    answer = client.delete(f"/users/{user}", headers=auth())
    assert answer.status_code == 503 and answer.get_json()["outcome"] == "partial"
    assert stored(database, user) == 0  # the database part is done
    assert forget_user(r, user) > 0  # what the retry does: the cache part, idempotent
    assert not any(r.hexists(keys.VersionKeys(v).users, user) for v in versions_held(r))
