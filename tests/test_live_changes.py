"""Users erased and movies changed under `movierec up` (real Redis, PostgreSQL, worker and web
server, over HTTP), including while a retrain runs: what the retrain publishes must not bring
an erased user back."""

from __future__ import annotations

from urllib.parse import quote
from urllib.request import urlopen

import pytest
import redis

from cache import keys
from cache.erasure import versions_held
from tests.serving_helpers import wait_until
from tests.test_e2e_up import Service

pytestmark = pytest.mark.integration
JOB_SECONDS = 180


@pytest.fixture(scope="module")
def service(small_data, tmp_path_factory):
    svc = Service(tmp_path_factory.mktemp("live"), small_data)
    svc.env["MOVIEREC_CHUNK_USERS"] = "5"  # a users phase of seconds: time to erase inside it
    svc.start()
    yield svc
    if svc.process.poll() is None:
        svc.stop()


@pytest.fixture(scope="module")
def r(service) -> redis.Redis:
    password = (service.tmp / "out" / "redis" / "password").read_text().strip()
    url = f"redis://:{quote(password, safe='')}@127.0.0.1:{service.redis_port}/0"
    return redis.Redis.from_url(url, socket_timeout=5)


def retrain(service) -> str:
    status, body = service.post("/jobs/retrain")
    assert status == 202, body
    return body["job_id"]


def stage(service, job_id: str) -> str:
    return (service.get(f"/jobs/{job_id}")[1].get("progress") or {}).get("stage") or ""


def finished(service, job_id: str) -> dict:
    body = wait_until(lambda: service.job_done(job_id), JOB_SECONDS, f"job {job_id}", 0.2)
    assert body["state"] == "SUCCESS", body
    return body


def held_anywhere(r: redis.Redis, user: int) -> list[str]:
    """Versions in Redis holding the user, and any key that names them."""
    versions = [v for v in versions_held(r) if r.hexists(keys.VersionKeys(v).users, user)]
    named = [k.decode() for k in r.scan_iter(match=f"*:{user}") if b":refresh:" in k]
    return versions + named


def test_users_erased_during_a_retrain_are_not_brought_back_by_it_nor_the_next(
    service, r, small_shape
):
    # Chunks go in user order: the first user's entry is staged before the erasure (which
    # removes it there too), the last one's after it (the publish takes it out before the flip).
    users = [1, small_shape.users]
    assert all(service.get(f"/users/{user}")[0] == 200 for user in users)
    job = retrain(service)
    wait_until(lambda: stage(service, job) == "users", JOB_SECONDS, "the users phase", 0.05)
    assert [service.send("DELETE", f"/users/{user}", None)[0] for user in users] == [204, 204]
    done = finished(service, job)  # its snapshot held both
    assert done["result"]["version"] == service.get("/")[1]["model_version"]
    for user in users:
        assert service.get(f"/users/{user}")[0] == 404
        assert service.get(f"/recommend/user/{user}")[0] == 404
        assert held_anywhere(r, user) == []
    finished(service, retrain(service))  # the next one reuses the live version's ratings
    for user in users:
        assert service.get(f"/users/{user}")[0] == 404
        assert held_anywhere(r, user) == []
        assert service.get(f"/users/{user}/ratings")[1]["total"] == 0


def shown_in(service, movie: int, user: int, neighbour: int, cluster: int, word: str) -> dict:
    """Whether each list endpoint, and the dashboard's pages, show the movie."""

    def ids(path: str) -> list[int]:
        return [m["movieId"] for m in service.get(path)[1]]

    return {
        "user": movie in ids(f"/recommend/user/{user}?n=10"),
        "similar": movie in ids(f"/recommend/movie/{neighbour}?n=10"),
        "popular": movie in ids("/popular?n=50"),
        "cluster": movie
        in [m["movieId"] for m in service.get(f"/clusters/{cluster}?n=50")[1]["movies"]],
        "search": movie in ids(f"/search?q={quote(word)}&n=50"),
        "dashboard": f'/dashboard/movies/{movie}"' in page(service, f"/dashboard/users/{user}"),
    }


def page(service, path: str) -> str:
    with urlopen(service.base + path, timeout=10) as answer:
        return answer.read().decode()


def test_a_movie_hidden_during_a_retrain_leaves_every_list_at_once_and_stays_hidden(service):
    user = 3
    movie = service.get(f"/recommend/user/{user}?n=10")[1][0]["movieId"]
    details = service.get(f"/movies/{movie}")[1]
    neighbour = service.get(f"/recommend/movie/{movie}?n=1")[1][0]["movieId"]
    args = (movie, user, neighbour, details["cluster"], details["title"].split()[0])
    before = shown_in(service, *args)
    assert before["user"] and before["dashboard"]
    job = retrain(service)
    wait_until(lambda: stage(service, job) == "users", JOB_SECONDS, "the users phase", 0.05)
    status, changed = service.send("PATCH", f"/movies/{movie}", {"hidden": True})
    assert status == 200 and changed["hidden"] is True
    assert not any(shown_in(service, *args).values())  # at once: no wait at all
    assert 'id="hidden"' in page(service, f"/dashboard/movies/{movie}")
    finished(service, job)
    assert not any(shown_in(service, *args).values()), "the retrain brought it back"
    assert len(service.get(f"/recommend/user/{user}?n=50")[1]) == 50
    assert service.send("PATCH", f"/movies/{movie}", {"hidden": False})[0] == 200
    assert shown_in(service, *args)["user"]


def test_new_genres_move_a_movie_to_the_cluster_they_belong_to(service):
    """Two new movies whose genres the model puts in two clusters; the first is given the
    second's genres: the worker places it where the second is, similar movies included."""
    genres = [
        "|".join(g["genre"] for g in summary["top_genres"][:2])
        for summary in service.get("/clusters")[1]
    ]
    placed: dict[int, tuple[int, str]] = {}
    for name in genres:
        status, movie = service.send(
            "POST", "/movies", {"title": f"Moving ({name})", "genres": name}
        )
        assert status == 201, movie
        placed.setdefault(movie["cluster"], (movie["movieId"], name))
        if len(placed) == 2:
            break
    (_, (first, _)), (target, (_, their_genres)) = placed.items()
    assert service.send("PATCH", f"/movies/{first}", {"genres": their_genres})[0] == 200

    def moved() -> dict | None:
        found = service.get(f"/movies/{first}")[1]
        return found if found["cluster"] == target else None

    wait_until(moved, 30, "the worker to place the movie", 0.2)
    similar = service.get(f"/recommend/movie/{first}?n=5")[1]
    assert similar and {m["cluster"] for m in similar} == {target}


def test_a_hidden_movie_whose_copy_redis_lost_is_hidden_again_by_the_next_publish(service, r):
    movie = service.get("/recommend/user/4?n=1")[1][0]["movieId"]
    assert service.send("PATCH", f"/movies/{movie}", {"hidden": True})[0] == 200
    r.hdel(keys.MOVIE_CHANGES, movie)  # as a Redis restored without it would be
    r.incr(keys.MOVIE_CHANGES_EPOCH)
    assert service.get(f"/movies/{movie}")[1]["hidden"] is False
    finished(service, retrain(service))
    assert service.get(f"/movies/{movie}")[1]["hidden"] is True  # from the database
    assert movie not in [m["movieId"] for m in service.get("/recommend/user/4?n=10")[1]]


def test_bad_changes_over_http_are_400_naming_the_field(service):
    for body, field in (({"hidden": 1}, "hidden"), ({"title": " "}, "title"), ({"x": 1}, "x")):
        status, answer = service.send("PATCH", "/movies/1", body)
        assert (status, answer.get("field")) == (400, field), answer
    status, answer = service.send("PATCH", "/movies/4000000000", {"hidden": True})
    assert status == 404 and "error" in answer


def test_a_new_user_who_rates_the_onboarding_movies_gets_a_first_list(service):
    shown = service.get("/onboarding?n=10")[1]
    assert len(shown) == 10 and all(m["cluster_name"] for m in shown)
    rated = {m["movieId"] for m in shown}
    body = [{"movieId": m, "rating": 5.0 if i % 2 else 2.0} for i, m in enumerate(sorted(rated))]
    user = 3_500_000
    assert service.send("POST", f"/users/{user}/ratings", body)[0] == 201

    def first_list() -> list | None:
        status, found = service.get(f"/recommend/user/{user}?n=10")
        return found if status == 200 else None

    listed = wait_until(first_list, 20, "the new user's first list", 0.1)
    assert len(listed) == 10 and not rated & {m["movieId"] for m in listed}
