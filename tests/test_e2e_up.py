"""`movierec up` end to end on the synthetic MovieLens folder: real Redis, worker, beat and
granian over HTTP."""

from __future__ import annotations

import signal
import socket
import threading
from collections import Counter
from pathlib import Path

import pytest

from service.embedded_redis import free_port
from tests.serving_helpers import http, serving_env, spawn_cli, stop, wait_until

pytestmark = pytest.mark.e2e
TOKEN = "e2e-token"
START_TIMEOUT = 150


def process_tree(root: int) -> dict[int, str]:
    """Every descendant of `root`: pid -> start time (to tell a reused pid apart)."""
    parents: dict[int, list[int]] = {}
    started: dict[int, str] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        parents.setdefault(int(fields[1]), []).append(pid)
        started[pid] = fields[19]
    tree, todo = {}, [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            tree[child] = started[child]
            todo.append(child)
    return tree


def still_running(tree: dict[int, str]) -> list[int]:
    alive = []
    for pid, start in tree.items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[19] == start and fields[0] != "Z":
            alive.append(pid)
    return alive


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


class Service:
    def __init__(self, tmp: Path, small_data: Path) -> None:
        self.web_port, self.redis_port = free_port(), free_port()
        self.base = f"http://127.0.0.1:{self.web_port}"
        self.env = serving_env(
            MOVIEREC_DATA=str(small_data),
            MOVIEREC_OUTPUT=str(tmp / "out"),
            MOVIEREC_API_TOKEN=TOKEN,
            MOVIEREC_CHUNK_USERS="200",
        )
        self.tmp = tmp
        self.runs = 0

    def start(self):
        self.runs += 1
        args = ["up", "--bind", f"127.0.0.1:{self.web_port}", "--redis-port", str(self.redis_port)]
        self.log = self.tmp / f"up-{self.runs}.log"
        self.process = spawn_cli(args, self.env, self.log)
        wait_until(self.healthy, START_TIMEOUT, f"/health to answer 200 (see {self.log})")
        self.tree = process_tree(self.process.pid)

    def healthy(self) -> bool:
        assert self.process.poll() is None, self.log.read_text()[-3000:]
        try:
            return self.get("/health")[0] == 200
        except OSError:
            return False

    def get(self, path: str):
        return http("GET", self.base + path)

    def post(self, path: str, token: str | None = TOKEN):
        return http("POST", self.base + path, token)

    def send(self, method: str, path: str, body: object) -> tuple[int, object]:
        return http(method, self.base + path, TOKEN, body)

    def job_done(self, job_id: str):
        status, body = self.get(f"/jobs/{job_id}")
        assert status == 200
        return body if body["state"] in ("SUCCESS", "FAILURE") else None

    def stop(self) -> int:
        return stop(self.process, signal.SIGINT, timeout=90)


@pytest.fixture(scope="module")
def service(small_data, tmp_path_factory):
    svc = Service(tmp_path_factory.mktemp("e2e"), small_data)
    svc.start()
    yield svc
    if svc.process.poll() is None:
        svc.stop()


def test_every_read_endpoint(service, known, small_shape, small_ratings):
    status, index = service.get("/")
    assert status == 200 and index["message"] == "Recommender System API is running"
    assert index["counts"]["users"] == small_shape.users
    assert index["counts"]["movies"] == small_shape.movies
    status, health = service.get("/health")
    assert (status, health["status"], health["down"]) == (200, "ok", [])
    assert health["model_version"] == index["model_version"]

    status, movie = service.get(f"/movie/{known.movie}")
    assert status == 200
    assert (movie["movieId"], movie["title"]) == (known.movie, known.title)  # accented
    assert isinstance(movie["cluster"], int) and movie["genres"]

    status, similar = service.get(f"/recommend/movie/{known.movie}?n=5")
    assert status == 200 and len(similar) == 5
    assert all(m["cluster"] == movie["cluster"] and m["movieId"] != known.movie for m in similar)

    status, recs = service.get("/recommend/user/1?n=5")
    assert status == 200 and len(recs) == 5 and all(m["title"] for m in recs)
    assert service.get("/recommend/user/1?n=5")[1] == recs  # deterministic

    status, user = service.get("/users/1")
    rated_by_one = int((small_ratings["userId"] == 1).sum())
    assert (
        status == 200 and sum(user["cluster_counts"].values()) == user["n_ratings"] == rated_by_one
    )

    status, clusters = service.get("/clusters")
    assert status == 200 and sum(c["size"] for c in clusters) == small_shape.movies
    status, cluster = service.get(f"/clusters/{user['favorite_cluster']}?n=3")
    assert status == 200 and len(cluster["movies"]) == 3
    assert service.get("/popular?n=2")[0] == 200


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/movie/99999999", 404),
        ("/movie/abc", 400),
        ("/recommend/user/100000", 404),
        ("/recommend/user/-3", 400),
        ("/recommend/user/1?n=51", 400),
        ("/clusters/99", 404),
        ("/jobs/not-a-job", 404),
        ("/nothing/here", 404),
    ],
)
def test_errors_over_http_are_json(service, path, status):
    got, body = service.get(path)
    assert got == status and isinstance(body["error"], str)


def test_refresh_user_job(service):
    assert service.post("/users/1/refresh", token=None)[0] == 401
    status, accepted = service.post("/users/1/refresh")
    assert status == 202
    done = wait_until(lambda: service.job_done(accepted["job_id"]), 60, "the refresh job")
    assert done["state"] == "SUCCESS" and done["result"]["user_id"] == 1


NEW_USER = 900100
FRESH_SECONDS = 2.0


@pytest.fixture(scope="module")
def first_ratings(known) -> dict[int, float]:
    """A new user's first ratings, of well-known (much rated) movies."""
    return known.first_ratings(5.0, 5.0, 4.5, 4.0, 4.5, 3.0, 4.0, 3.5)


def listed(service, user: int) -> list[int] | None:
    status, body = service.get(f"/recommend/user/{user}?n=50")
    return [m["movieId"] for m in body] if status == 200 else None


def list_without(service, user: int, rated: set[int]) -> list[int]:
    def ready() -> list[int] | None:
        found = listed(service, user)
        return found if found and rated.isdisjoint(found) else None

    return wait_until(ready, FRESH_SECONDS, f"user {user}'s list without {sorted(rated)}", 0.05)


@pytest.fixture(scope="module")
def posted(service, first_ratings):
    """A new user's first ratings and a new movie, written over HTTP."""
    assert listed(service, NEW_USER) is None  # no ratings yet: 404 with a hint
    body = [{"movieId": m, "rating": r} for m, r in first_ratings.items()]
    status, answer = service.send("POST", f"/users/{NEW_USER}/ratings", body)
    assert status == 201 and answer["stored"] == 8, answer
    status, movie = service.send("POST", "/movies", {"title": "E2E (2026)", "genres": "Drama"})
    assert status == 201, movie
    return movie


def test_a_new_user_has_a_list_within_seconds_without_what_they_rated(
    service, posted, first_ratings
):
    assert len(list_without(service, NEW_USER, set(first_ratings))) == 50


def test_rating_the_top_of_a_list_takes_it_off_within_seconds(service, posted):
    top = listed(service, 42)[0]
    status, _ = service.send("POST", "/users/42/ratings", [{"movieId": top, "rating": 3.0}])
    assert status == 201
    assert top not in list_without(service, 42, {top})


def test_reads_keep_succeeding_while_a_retrain_flips_the_version(
    service, posted, known, small_shape
):
    old = service.get("/")[1]["model_version"]
    seen: Counter = Counter()
    stop_reading = threading.Event()
    paths = ("/recommend/user/42?n=10", "/health", f"/movie/{known.movie}")

    def read_continuously() -> None:
        while not stop_reading.is_set():
            for path in paths:
                status, _ = service.get(path)
                seen[(path, status)] += 1
            status, index = service.get("/")
            seen[("version", index["model_version"])] += 1

    reader = threading.Thread(target=read_continuously)
    reader.start()
    try:
        assert service.post("/jobs/retrain", token="wrong")[0] == 401
        status, job = service.post("/jobs/retrain")
        assert status == 202 and job["status_url"] == f"/jobs/{job['job_id']}"
        conflict, running = service.post("/jobs/retrain")
        assert conflict == 409 and running["job_id"] == job["job_id"]
        done = wait_until(lambda: service.job_done(job["job_id"]), 120, "the retrain job")
        assert done["state"] == "SUCCESS", done["error"]
        new = done["result"]["version"]
        assert new != old and done["result"]["previous"] == old
        # the new user, from the database snapshot
        assert done["result"]["users"] == small_shape.users + 1
        wait_until(lambda: seen[("version", new)] > 0, 30, "the new version to be served")
    finally:
        stop_reading.set()
        reader.join()
    statuses = {key for key in seen if key[0] != "version"}
    assert statuses == {(p, 200) for p in paths}
    assert {key[1] for key in seen if key[0] == "version"} == {old, new}
    counts = service.get("/")[1]["counts"]
    assert counts["users"] == small_shape.users + 1
    assert counts["movies"] == small_shape.movies + 1  # the new movie too


def test_ctrl_c_stops_every_process_and_a_restart_serves_the_cached_version(service, first_ratings):
    version = service.get("/")[1]["model_version"]
    tree = service.tree
    assert len(tree) >= 4  # redis, worker (+ pool), web (+ workers)

    assert service.stop() == 0
    assert still_running(tree) == []
    assert not port_open(service.web_port) and not port_open(service.redis_port)

    service.start()  # same output folder: Redis reloads its append-only file
    assert service.get("/")[1]["model_version"] == version
    assert "serving cached version" in service.log.read_text()
    assert "importing" not in service.log.read_text()  # the database kept everything
    status, listed = service.get(f"/users/{NEW_USER}/ratings")
    assert status == 200 and listed["total"] == len(first_ratings), listed
    tree = service.tree
    assert service.stop() == 0
    assert still_running(tree) == []
