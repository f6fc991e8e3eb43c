"""Shared by the serving tests: a hand-made version folder and a real Redis server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import psycopg

from pipeline.artifacts import VersionFolder
from service.embedded_redis import start_redis
from store.local import LocalBackend
from store.versions import VersionStore

REPO = Path(__file__).resolve().parents[1]

# Six movies in two clusters, three users, lists three deep. User 3 has seen all of cluster 0,
# so their list is filled from the popular movies of cluster 1.
MOVIES = pd.DataFrame(
    {
        "movieId": pd.array([10, 20, 30, 40, 50, 60], dtype="uint32"),
        "title": ["Alpha (2000)", "Beta (2001)", "Gamma (2002)", "Delta (2003)", "Epsilon (2004)",
                  "Zeta (2005)"],
        "genres": ["Drama", "Comedy|Drama", "Comedy", "Action", "Action|Sci-Fi", ""],
        "n_ratings": [2, 1, 1, 2, 1, 0],
        "avg_rating": [4.25, 3.5, 3.0, 4.0, 3.5, float("nan")],
        "cluster": pd.array([0, 0, 0, 1, 1, 1], dtype="int32"),
        "score": [4.2, 3.9, 3.5, 4.0, 3.6, 3.3],
    }
)  # fmt: skip
RATINGS = pd.DataFrame(
    {
        "userId": pd.array([1, 1, 2, 2, 3, 3, 3], dtype="uint32"),
        "movieId": pd.array([10, 40, 40, 50, 10, 20, 30], dtype="uint32"),
        "rating": pd.array([4.5, 4.0, 4.0, 3.5, 4.0, 3.5, 3.0], dtype="float32"),
        "timestamp": pd.array([1, 2, 3, 4, 5, 6, 7], dtype="int32"),
    }
)
FAVORITES = pd.DataFrame(
    {
        "userId": pd.array([1, 2, 3], dtype="uint32"),
        "favorite_cluster": [0, 1, 0],
        "n_ratings": [2, 2, 3],
        "n_c0": [1, 0, 3],
        "n_c1": [1, 2, 0],
    }
)
RECOMMENDATIONS = pd.DataFrame(
    {
        "userId": pd.array([1, 1, 1, 2, 2, 2, 3, 3, 3], dtype="uint32"),
        "rank": pd.array([1, 2, 3] * 3, dtype="int32"),
        "movieId": pd.array([20, 30, 50, 60, 10, 20, 40, 50, 60], dtype="uint32"),
        # User 2's scores are per-user (as a personalised ranking gives), not the movie's.
        "score": [3.9, 3.5, 3.6, 0.91, 0.82, 0.73, 4.0, 3.6, 3.3],
        "cluster": pd.array([0, 0, 1, 1, 0, 0, 1, 1, 1], dtype="int32"),
        "source": ["cluster", "cluster", "popular", "cluster", "popular", "popular"]
        + ["popular"] * 3,
    }
)
SIMILAR = pd.DataFrame(
    {
        "movieId": pd.array([10, 10, 20, 20, 30, 30, 40, 40, 50, 50, 60, 60], dtype="uint32"),
        "rank": pd.array([1, 2] * 6, dtype="int32"),
        "similarId": pd.array([20, 30, 10, 30, 20, 10, 50, 60, 40, 60, 50, 40], dtype="uint32"),
        "score": [0.9, 0.5, 0.9, 0.7, 0.7, 0.5, 0.8, 0.4, 0.8, 0.6, 0.6, 0.4],
    }
)
POPULAR = pd.DataFrame(
    {
        "rank": pd.array([1, 2, 3], dtype="int32"),
        "movieId": pd.array([10, 40, 20], dtype="uint32"),
        "score": [2.0, 2.0, 1.0],
    }
)
SUMMARY = [
    {
        "cluster": 0,
        "size": 3,
        "top_genres": [{"genre": "Drama", "share": 0.6667}, {"genre": "Comedy", "share": 0.6667}],
        "avg_rating": 3.75,
        "n_ratings": 4,
        "top_movies": [10, 20, 30],
    },
    {
        "cluster": 1,
        "size": 3,
        "top_genres": [{"genre": "Action", "share": 0.6667}, {"genre": "Sci-Fi", "share": 0.3333}],
        "avg_rating": 3.8333,
        "n_ratings": 3,
        "top_movies": [40, 50, 60],
    },
]
DEPTH = 3


def fake_version(models_dir: Path, version: str, title_tag: str = "") -> VersionFolder:
    """Write a complete version folder as docs/artifacts.md describes it.

    `title_tag` is appended to every title, so tests can tell which version served a response.
    """
    folder = models_dir / version
    folder.mkdir(parents=True)
    movies = MOVIES.assign(title=MOVIES["title"] + title_tag)
    frames = {
        "movies": movies,
        "ratings": RATINGS,
        "user_favorites": FAVORITES,
        "user_recommendations": RECOMMENDATIONS,
        "movie_similar": SIMILAR,
        "popular": POPULAR,
    }
    for name, frame in frames.items():
        frame.to_parquet(folder / f"{name}.parquet", index=False)
    (folder / "cluster_summary.json").write_text(json.dumps(SUMMARY))
    metadata = {
        "version": version,
        "trained_at": "2026-01-01T00:00:00+00:00",
        "data_fingerprint": "0" * 64,
        "parameters": {"k": 2, "list_depth": DEPTH, "prior_count": 10.0},
        "metrics": {},
        "counts": {"movies": 6, "ratings": 7, "users": 3, "tags": 0},
        "library_versions": {},
    }
    (folder / "metadata.json").write_text(json.dumps(metadata))
    (folder / "kmeans_model.pkl").write_bytes(b"")
    VersionStore(LocalBackend(models_dir), None).commit(VersionFolder(folder))  # and LATEST
    return VersionFolder(folder)


@contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """A real redis-server for one test module; yields its URL."""
    process, url = start_redis(folder)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(10)


class Servers(NamedTuple):
    database_url: str
    redis_url: str


@contextmanager
def servers_with(data: Path, tmp: Path) -> Iterator[Servers]:
    """A real PostgreSQL holding the MovieLens folder `data`, and a real Redis."""
    from db.importer import import_folder
    from service.embedded_postgres import running_postgres

    with running_postgres(tmp / "pg") as db_url, redis_server(tmp / "redis") as redis_url:
        with psycopg.connect(db_url, autocommit=True) as conn:
            import_folder(conn, data, tmp / "import", progress=False)
        yield Servers(db_url, redis_url)


def serving_env(**overrides: str) -> dict[str, str]:
    """The test process's environment without any Redis or serving settings of the developer."""
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env.update(overrides)
    return env


def spawn_cli(
    args: list[str], env: dict[str, str], log: Path, prefix: list[str] | None = None
) -> subprocess.Popen:
    """`movierec ARGS` as a child in its own session, output to `log`; `prefix` replaces
    `python -m service.cli` (a wrapper that changes something before the CLI runs)."""
    with log.open("wb") as sink:
        return subprocess.Popen(
            [*(prefix or [sys.executable, "-m", "service.cli"]), *args],
            env=env,
            cwd=REPO,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
    if process.poll() is None:
        process.send_signal(sig)
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        return process.wait()


def http(
    method: str, url: str, token: str | None = None, body: object = None
) -> tuple[int, object]:
    """Status and decoded JSON body (None for an empty one: a 204); every response of the API
    with a body, errors included, is JSON."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def wait_until(predicate, timeout: float, what: str, interval: float = 0.2):
    """Poll until `predicate()` is truthy; returns its value or fails naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
