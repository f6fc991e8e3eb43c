"""Serving speed, as shipped: `movierec up`'s web tier beside the spec's literal endpoint.

    pip install -e '.[bench]'   # FastAPI and uvicorn, for the baseline
    python -m benchmarks.bench_serving [--rounds 2] [--publish-25m] [--write BENCHMARKS.md]

Starts `movierec up --data DATA --out <temporary folder>` (it trains, publishes and serves with
its own defaults), then the baseline on that output: the team document's endpoint under FastAPI,
one uvicorn process, pandas per request. wrk loads each in turn, alternating `--rounds` times,
with ids cycling over every user. `--busy-cores N` runs N shell busy loops beside every
measured run, as other jobs on the machine would (the baseline speeds up, `up` slows down:
BENCHMARKS.md, "Serving"). With --publish-25m it also times publishing all users of a
25M-rating synthetic set into a fresh redis-server.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from importlib.metadata import version as package_version
from pathlib import Path
from statistics import median
from typing import NamedTuple

import pandas as pd
import redis

from benchmarks.bench_pipeline import measure
from benchmarks.live_service import processes_of, service_up
from benchmarks.machine import CLK_TCK, process_table
from benchmarks.wrk_load import LoadResult, run_wrk, write_script, wrk_version
from pipeline.artifacts import ModelsFolder
from pipeline.settings import BUNDLED_SAMPLE
from service.embedded_redis import LOOPBACK, free_port
from service.up import UpOptions
from tests.serving_helpers import redis_server, serving_env, stop

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "service.cli"]
BEGIN, END = "<!-- bench_serving:begin -->", "<!-- bench_serving:end -->"
OURS, BASELINE = "movierec up", "spec literal (FastAPI, 1 uvicorn process)"
BASELINE_APP = "benchmarks.spec_literal_fastapi:create_app"
GOAL_RATIO, GOAL_P99_MS = 20.0, 20.0
CHILD_PUBLISH = """
import json, sys, time
from pathlib import Path
from cache.publish import publish_version_dir
from cache.redis_client import redis_from_url
from pipeline.artifacts import VersionFolder
start = time.perf_counter()
summary = publish_version_dir(redis_from_url(sys.argv[1]), VersionFolder(Path(sys.argv[2])))
print(json.dumps({**summary, "wall_in_process": time.perf_counter() - start}))
"""


@dataclass(frozen=True)
class Endpoint:
    name: str
    load: LoadResult
    response_bytes: int
    load_average: float
    cpu_us_per_request: float  # of the server's processes, over the measured run


def say(message: str) -> None:
    print(f"bench_serving: {message}", flush=True)


def run_cli(args: list[str], env: dict[str, str]) -> None:
    subprocess.run([*CLI, *args], cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def get_status(url: str) -> int | None:
    try:
        return get(url)[0]
    except OSError:
        return None


@contextmanager
def served(
    command: list[str], env: dict[str, str], probe: str, log: Path
) -> Iterator[subprocess.Popen]:
    """A server in its own session, up once `probe` answers 200; stopped on exit."""
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while get_status(probe) != 200:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{command[:4]} did not come up:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield process
    finally:
        stop(process)


def check_list(url: str, n: int) -> int:
    """Size of one response, after checking it is a list of n movies with ids and titles."""
    status, body = get(url)
    movies = json.loads(body)
    if status != 200 or len(movies) != n or not all({"movieId", "title"} <= set(m) for m in movies):
        raise RuntimeError(f"{url}: unexpected response {status} {body[:300]!r}")
    return len(body)


def wait_for_quiet(max_load: float, max_wait: float) -> float:
    """Other people's jobs share the machine: wait (up to max_wait) for the 1-minute load."""
    deadline = time.monotonic() + max_wait
    while (load := os.getloadavg()[0]) > max_load and time.monotonic() < deadline:
        say(f"load average {load:.2f} > {max_load}: waiting 60 s")
        time.sleep(60)
    return load


def cpu_seconds(pids: list[int]) -> float:
    table = process_table()
    return sum(table[pid][1] for pid in pids if pid in table) / CLK_TCK


@contextmanager
def busy_cores(count: int, seconds: float) -> Iterator[None]:
    """`count` shell busy loops, each keeping one core busy as another job on the machine
    would, for the block; each also ends by itself after `seconds`, should this process be
    killed before it can stop them."""
    loops: list[subprocess.Popen] = []
    try:
        for _ in range(count):
            loop = ["timeout", f"{seconds:.0f}", "sh", "-c", "while :; do :; done"]
            loops.append(subprocess.Popen(loop, start_new_session=True))
        yield
    finally:
        for loop in loops:
            os.killpg(loop.pid, signal.SIGKILL)  # `timeout` and the loop it runs
            loop.wait()


def baseline_command(port: int) -> list[str]:
    """The baseline's one uvicorn process, as the team document serves it."""
    return [
        sys.executable, "-m", "uvicorn", "--factory", BASELINE_APP,
        "--host", LOOPBACK, "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip


class Measured(NamedTuple):
    load: LoadResult
    cpu_us: float  # of the server's processes per request, over the measured run


def measured_run(
    base: str,
    script: Path,
    pids: list[int],
    busy: int,
    warmup: float,
    seconds: float,
    connections: int,
    wrk_threads: int,
) -> Measured:
    """wrk for `warmup` seconds, then `seconds` measured with the CPU time of `pids`; `busy`
    shell busy loops run beside both."""
    with busy_cores(busy, warmup + seconds + 60):
        run_wrk(base, script, connections, warmup, wrk_threads)
        cpu_before = cpu_seconds(pids)
        result = run_wrk(base, script, connections, seconds, wrk_threads)
        return Measured(result, (cpu_seconds(pids) - cpu_before) / result.requests * 1e6)


def load_endpoint(
    name: str, base: str, pids: list[int], script: Path, sample: int, args: argparse.Namespace
) -> Endpoint:
    """Check one answer (of user `sample`), wait for a quiet machine, warm up, then measure;
    `pids` are the server's processes, whose CPU time is counted over the measured run."""
    size = check_list(f"{base}/recommend/user/{sample}?n={args.n}", args.n)
    load_average = wait_for_quiet(args.max_load, args.max_wait)
    say(f"{name}: {args.duration:.0f} s, {args.connections} connections, "
        f"load {load_average:.2f}, {args.busy_cores} busy core(s)")  # fmt: skip
    result, cpu_us = measured_run(
        base, script, pids, args.busy_cores, args.warmup, args.duration, args.connections,
        args.wrk_threads,
    )  # fmt: skip
    say(f"{name}: {result.rps:,.0f} requests/s, p50 {result.p50_ms:.1f} ms, "
        f"p99 {result.p99_ms:.1f} ms, errors {result.error_count}, "
        f"{cpu_us:.0f} µs of CPU per request")  # fmt: skip
    return Endpoint(name, result, size, load_average, cpu_us)


def serving_run(args: argparse.Namespace, work: Path) -> dict:
    """`movierec up` as shipped beside the FastAPI baseline, alternated `args.rounds` times."""
    with service_up(args.data, work, args.startup_timeout) as service:
        version = ModelsFolder(service.out / "models").latest()
        users = pd.read_parquet(version.favorites, columns=["userId"])
        ids = sorted(users["userId"].astype(int).tolist())
        script = write_script(work, "/recommend/user/", ids, f"?n={args.n}")
        port = free_port()
        baseline = baseline_command(port)
        baseline_base = f"http://{LOOPBACK}:{port}"
        env = serving_env(MOVIEREC_OUTPUT=str(service.out))
        probe = f"{baseline_base}/recommend/user/{ids[0]}"
        results = []
        with served(baseline, env, probe, work / "baseline.log") as process:
            # Every process of `up` (Redis and PostgreSQL included) but the baseline's.
            ours = [pid for pid in processes_of(service.out, os.getpid()) if pid != process.pid]
            for _ in range(args.rounds):
                results.append(load_endpoint(OURS, service.base, ours, script, ids[0], args))
                results.append(
                    load_endpoint(BASELINE, baseline_base, [process.pid], script, ids[0], args)
                )
    shipped = UpOptions()  # `up` was started without --workers or --threads
    return {
        "data": str(args.data),
        "counts": version.read_metadata()["counts"],
        "users_cycled": len(ids),
        "web_workers": shipped.web_workers,
        "web_threads": shipped.web_threads,
        "endpoints": [asdict(e) | {"rps": e.load.rps} for e in results],
    }


def publish_25m(args: argparse.Namespace, work: Path) -> dict:
    data, out = args.synth_dir, args.synth_out
    if not (data / "ratings.csv").is_file():
        say(f"generating {args.synth_ratings:,} ratings into {data} ...")
        run_cli(["synth", "--ratings", str(args.synth_ratings), "--out", str(data)], serving_env())
    version = ModelsFolder(out / "models").latest()
    if version is None or args.rebuild:
        say(f"pipeline on {data} ...")
        run_cli(["pipeline", "--data", str(data), "--out", str(out), "--no-plots"], serving_env())
        version = ModelsFolder(out / "models").latest()
    with redis_server(work / "redis-25m") as url:
        r = redis.Redis.from_url(url)
        empty = r.info("memory")["used_memory"]
        say(f"publishing {version.path} ...")
        report = measure([sys.executable, "-c", CHILD_PUBLISH, url, str(version.path)])
        memory = r.info("memory")
        users_key = f"movierec:v:{report['version']}:users"
        users_hash = r.memory_usage(users_key, samples=0)
    metadata = version.read_metadata()
    return {
        "counts": metadata["counts"],
        "wall_s": report["wall"],
        "publish_s": round(report["wall_in_process"], 2),
        "publisher_peak_rss_mb": report["peak_rss_mb"],
        "used_memory": memory["used_memory"],
        "used_memory_empty": empty,
        "users_hash_bytes": users_hash,
        "users": report["users"],
        "bytes_per_user": users_hash / report["users"],
        "used_memory_per_user": (memory["used_memory"] - empty) / report["users"],
    }


def machine() -> dict:
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), platform.processor(),
    )  # fmt: skip
    packages = ("granian", "flask", "orjson", "redis", "hiredis", "fastapi", "uvicorn", "pandas")
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": model,
        "python": platform.python_version(),
        "packages": {name: package_version(name) for name in packages},
        "wrk": wrk_version(),
    }


class Summary(NamedTuple):
    rps: float  # median over the rounds
    p99_ms: float  # median over the rounds
    worst_p99_ms: float


def summary(endpoints: list[dict], name: str) -> Summary:
    runs = [e for e in endpoints if e["name"] == name]
    p99s = [e["load"]["p99_ms"] for e in runs]
    return Summary(median(e["rps"] for e in runs), median(p99s), max(p99s))


def markdown(report: dict, args: argparse.Namespace) -> str:
    m, s = report["machine"], report["serving"]
    c = s["counts"]
    ours, baseline = summary(s["endpoints"], OURS), summary(s["endpoints"], BASELINE)
    ratio = ours.rps / baseline.rps
    met = ratio >= GOAL_RATIO and ours.p99_ms <= GOAL_P99_MS
    busy = f", beside {args.busy_cores} shell busy loop(s)" if args.busy_cores else ""
    lines = [
        f"Command: `{report['command']}`",
        "",
        f"Machine: {m['nproc']} cores (`nproc` = {m['nproc']}), {m['cpu']}; Python {m['python']}, "
        + ", ".join(f"{name} {v}" for name, v in m["packages"].items())
        + f", {m['wrk']}. 1-minute load average before each measurement: "
        + ", ".join(f"{e['load_average']:.2f}" for e in s["endpoints"])
        + " (other jobs share the machine).",
        "",
        f"Data: {Path(s['data']).name} ({c['ratings']:,} ratings, {c['users']:,} users, "
        f"{c['movies']:,} movies), trained and published by `movierec up` itself.",
        "",
        f"Load: wrk, {args.wrk_threads} threads, {args.connections} connections, "
        f"`GET /recommend/user/<id>?n={args.n}` with ids cycling over all {s['users_cycled']} "
        f"users, {args.warmup:.0f} s warm-up then {args.duration:.0f} s measured, the two "
        f"alternated {args.rounds} times. `{OURS}` is served as shipped, with its defaults "
        f"({s['web_workers']} web workers of {s['web_threads']} threads, its embedded Redis "
        "and PostgreSQL, an idle Celery worker beside it); the baseline is "
        "`benchmarks/spec_literal_fastapi.py` on the same output folder. wrk and both servers "
        f"share the same {m['nproc']} cores{busy}. Server CPU per request: the CPU time of the "
        "server's processes over the measured run (all of `up`'s, Redis included; the "
        "baseline's one process) divided by the requests answered.",
        "",
        "| implementation | requests/s | p50 (ms) | p99 (ms) | max (ms) | errors | "
        "server CPU per request (µs) | response (bytes) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for e in s["endpoints"]:
        load = e["load"]
        lines.append(
            f"| {e['name']} | {e['rps']:,.0f} | {load['p50_ms']:.1f} | {load['p99_ms']:.1f} | "
            f"{load['max_ms']:.1f} | {sum(load['errors'].values())} | "
            f"{e['cpu_us_per_request']:,.0f} | {e['response_bytes']:,} |"
        )
    lines += [
        "",
        f"Medians over the rounds: {OURS} {ours.rps:,.0f} requests/s (p99 {ours.p99_ms:.1f} ms, "
        f"worst {ours.worst_p99_ms:.1f} ms), baseline {baseline.rps:,.0f} requests/s (p99 "
        f"{baseline.p99_ms:.1f} ms): **{ratio:.1f}x**.",
        "",
        f"Goal (>= {GOAL_RATIO:.0f}x the baseline, p99 <= {GOAL_P99_MS:.0f} ms): "
        f"{'met' if met else 'NOT met'}.",
    ]
    if "publish_25m" in report:
        p = report["publish_25m"]
        mb = 1024 * 1024
        lines += [
            "",
            f"Publishing every user of a {p['counts']['ratings']:,}-rating synthetic set "
            f"(`movierec synth --ratings {args.synth_ratings}`, pipeline with `--no-plots`) into "
            "a fresh redis-server (AOF on, as deployed) with `publish_version_dir`, in a child "
            "process:",
            "",
            "| users | movies | publish wall (s) | used_memory (MiB) | users hash (MiB) "
            "| bytes per user (users hash) | used_memory per user | publisher peak RSS (MiB) |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
            f"| {p['users']:,} | {p['counts']['movies']:,} | {p['wall_s']:.1f} | "
            f"{p['used_memory'] / mb:,.0f} | {p['users_hash_bytes'] / mb:,.0f} | "
            f"{p['bytes_per_user']:,.0f} | {p['used_memory_per_user']:,.0f} | "
            f"{p['publisher_peak_rss_mb']:,} |",
        ]
    return "\n".join(lines)


def write_section(path: Path, body: str) -> None:
    """Replace the generated part of "## Serving" (between markers), keeping everything else."""
    text = path.read_text() if path.is_file() else "# Benchmarks\n"
    block = f"{BEGIN}\n{body}\n{END}"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    elif "## Serving" in text:
        head, rest = text.split("## Serving", 1)
        title, _, tail = rest.partition("\n")
        text = f"{head}## Serving{title}\n\n{block}\n{tail}"
    else:
        text = f"{text.rstrip()}\n\n## Serving\n\n{block}\n"
    path.write_text(text)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=BUNDLED_SAMPLE)
    parser.add_argument("--n", type=int, default=10, help="list length asked for")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before measuring")
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="alternations of the two")
    parser.add_argument("--startup-timeout", type=float, default=600.0, help="for `up`, seconds")
    parser.add_argument("--max-load", type=float, default=1.0, help="wait for a lower load1")
    parser.add_argument("--max-wait", type=float, default=120.0, help="longest wait, seconds")
    parser.add_argument(
        "--busy-cores", type=int, default=0, help="busy loops beside each measured run"
    )
    parser.add_argument("--publish-25m", action="store_true", help="also time a 25M publish")
    parser.add_argument("--synth-ratings", type=int, default=25_000_000)
    parser.add_argument("--synth-dir", type=Path, default=Path("/tmp/bench-25m"))
    parser.add_argument("--synth-out", type=Path, default=Path("/tmp/bench-25m-out"))
    parser.add_argument("--rebuild", action="store_true", help="rerun the 25M pipeline")
    parser.add_argument("--write", type=Path, help="put the results into this markdown file")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    report = {
        "command": "python -m benchmarks.bench_serving " + " ".join(sys.argv[1:]),
        "machine": machine(),
    }
    with tempfile.TemporaryDirectory(prefix="movierec-bench-serving-") as folder:
        work = Path(folder)
        report["serving"] = serving_run(args, work)
        if args.publish_25m:
            report["publish_25m"] = publish_25m(args, work)
    body = markdown(report, args)
    print(body)
    if args.write:
        write_section(args.write, body)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
