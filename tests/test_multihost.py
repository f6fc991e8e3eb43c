"""Three hosts that share no disk: a web server and two workers, each with its own output
folder, one S3 server (moto) as the version store, one Redis and one PostgreSQL.

As root, each host runs in its own mount namespace with a tmpfs over the other hosts' folders
and the MovieLens folder, so a file one host wrote is out of every other host's reach.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cache.settings import Settings
from service.embedded_redis import free_port
from tasks.celery_app import make_celery
from tests.s3_server import S3Server
from tests.serving_helpers import http, servers_with, serving_env, spawn_cli, stop, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
TOKEN = "multihost-token"
HOSTS = ("web", "worker-b", "worker-c")
JOB_TIMEOUT = 240
FRESH_SECONDS = 2.0  # the goal is 1 s; this bound only catches a stall on a loaded machine


def isolated(own: str, hosts: dict[str, Path], hidden: list[Path]) -> list[str] | None:
    """A command prefix that runs the CLI with every other host's folder (and `hidden`)
    covered by a tmpfs, in a mount namespace of its own; None when not root."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return None
    covered = [str(path) for name, path in hosts.items() if name != own] + [str(p) for p in hidden]
    mounts = "; ".join(f"mount -t tmpfs tmpfs '{path}'" for path in covered)
    cli = [sys.executable, "-m", "service.cli"]
    return ["unshare", "-m", "sh", "-c", f'{mounts} && exec "$@"', "sh", *cli]


@dataclass
class Cluster:
    base: str
    hosts: dict[str, Path]
    logs: dict[str, Path]

    def send(self, method: str, path: str, body: object = None) -> tuple[int, object]:
        return http(method, self.base + path, TOKEN, body)

    def job(self, job_id: str) -> dict:
        def finished() -> dict | None:
            status, body = http("GET", f"{self.base}/jobs/{job_id}")
            return body if status == 200 and body["state"] in ("SUCCESS", "FAILURE") else None

        return wait_until(finished, JOB_TIMEOUT, f"job {job_id}")


@pytest.fixture(scope="module")
def cluster(s3_server: S3Server, small_data: Path, tmp_path_factory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("multihost")
    hosts = {name: tmp / name for name in HOSTS}
    for folder in hosts.values():
        folder.mkdir()
    with servers_with(small_data, tmp) as (db_url, redis_url):
        shared = serving_env(
            REDIS_URL=redis_url,
            MOVIEREC_DATABASE_URL=db_url,
            MOVIEREC_MODELS=s3_server.new_bucket(),
            MOVIEREC_API_TOKEN=TOKEN,
            MOVIEREC_CHUNK_USERS="15",
            **s3_server.env,
        )
        shared.pop("MOVIEREC_DATA", None)  # workers read ratings from PostgreSQL only
        env = {name: shared | {"MOVIEREC_OUTPUT": str(path)} for name, path in hosts.items()}
        logs = {name: tmp / f"{name}.log" for name in (*HOSTS, "bootstrap")}
        hidden = [small_data, tmp / "import"]

        def spawn(host: str, args: list[str], log: str):
            return spawn_cli(args, env[host], logs[log], isolated(host, hosts, hidden))

        bootstrap = spawn("web", ["bootstrap"], "bootstrap")
        assert bootstrap.wait(300) == 0, logs["bootstrap"].read_text()[-3000:]
        port = free_port()
        web = spawn("web", ["web", "--bind", f"127.0.0.1:{port}", "--workers", "1"], "web")
        workers = [spawn(name, ["worker", "--concurrency", "1"], name) for name in HOSTS[1:]]
        app = make_celery(Settings.from_env(env["web"]))
        try:
            wait_until(lambda: len(app.control.ping(timeout=0.5)) >= 2, 90, "both workers")
            base = f"http://127.0.0.1:{port}"
            wait_until(lambda: http("GET", base + "/health")[0] == 200, 60, "the web host")
            yield Cluster(base, hosts, logs)
        finally:
            for process in (web, *workers):
                stop(process)
            app.close()


def retrain(cluster: Cluster) -> dict:
    status, started = cluster.send("POST", "/jobs/retrain")
    assert status == 202, started
    job = cluster.job(started["job_id"])
    assert job["state"] == "SUCCESS", (
        job.get("error"),
        cluster.logs["worker-b"].read_text()[-3000:],
    )
    return job


@pytest.fixture(scope="module")
def retrained(cluster) -> dict:
    return retrain(cluster)


def test_a_retrain_spreads_its_chunks_over_both_workers(cluster, retrained):
    version = retrained["result"]["version"]
    for worker in HOSTS[1:]:
        cached = cluster.hosts[worker] / "models" / version
        assert (cached / "ratings.parquet").is_file(), f"{worker} ran no chunk of {version}"
        assert "users_chunk" in cluster.logs[worker].read_text()
    assert not (cluster.hosts["web"] / "models" / version / "ratings.parquet").exists()


def test_the_new_version_is_served_and_on_the_dashboard(cluster, retrained):
    version = retrained["result"]["version"]
    status, health = http("GET", cluster.base + "/health")
    assert status == 200 and health["model_version"] == version
    assert health["parts"]["store"]["status"] == "ok"
    with urllib.request.urlopen(cluster.base + "/dashboard/", timeout=10) as page:
        assert version in page.read().decode()


def test_a_rating_and_a_new_movie_show_up_at_once(cluster, retrained):
    status, listed = http("GET", cluster.base + "/recommend/user/1?n=5")
    assert status == 200 and listed
    top = listed[0]["movieId"]
    started = time.monotonic()
    status, _ = cluster.send("POST", "/users/1/ratings", [{"movieId": top, "rating": 2.0}])
    assert status == 201

    def without_top() -> bool:
        status, now = http("GET", cluster.base + "/recommend/user/1?n=5")
        return status == 200 and top not in [item["movieId"] for item in now]

    wait_until(without_top, FRESH_SECONDS, "the rated movie to leave the list", interval=0.05)
    assert time.monotonic() - started < FRESH_SECONDS
    status, movie = cluster.send(
        "POST", "/movies", {"title": "Far Hosts (2026)", "genres": "Drama"}
    )
    assert status == 201, movie
    status, found = http("GET", f"{cluster.base}/movie/{movie['movieId']}")
    assert status == 200 and found["cluster"] == movie["cluster"]


def test_reads_go_on_and_a_new_movie_waits_while_the_store_is_frozen(s3_server, cluster):
    """The web host never fetched the new version's model: without the store it cannot place
    a movie, answers 503 with a JSON error, and places it once the store is back."""
    retrain(cluster)
    body = {"title": "Frozen Store (2026)", "genres": "Comedy"}
    with s3_server.frozen():
        started = time.monotonic()
        status, refused = cluster.send("POST", "/movies", body)
        assert status == 503 and "store" in refused["error"]
        assert time.monotonic() - started < 5
        for path in ("/recommend/user/2?n=5", "/movie/1", "/popular", "/clusters"):
            assert http("GET", cluster.base + path)[0] in (200, 404), path

        def degraded() -> dict | None:  # /health checks the store at most every 10 s
            status, health = http("GET", cluster.base + "/health")
            assert status == 200
            return health if health["status"] == "degraded" else None

        assert wait_until(degraded, 20, "/health to see the store")["degraded"] == ["store"]

    def placed() -> dict | None:  # the web tier fails fast for 5 s after a store failure
        status, answer = cluster.send("POST", "/movies", body)
        assert status in (201, 503), answer
        return answer if status == 201 else None

    assert wait_until(placed, 15, "the movie to be placed")["cluster"] is not None


def test_a_retrain_without_the_store_fails_frees_the_lock_and_keeps_serving(s3_server, cluster):
    live = http("GET", cluster.base + "/health")[1]["model_version"]
    with s3_server.frozen():
        status, started = cluster.send("POST", "/jobs/retrain")
        assert status == 202
        job = cluster.job(started["job_id"])
        assert job["state"] == "FAILURE" and "store" in job["error"], job
        assert http("GET", cluster.base + "/health")[1]["model_version"] == live
    retrain(cluster)  # the lock was freed
