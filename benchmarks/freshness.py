"""The freshness scenario of bench_live: simulated users post ratings to a running `movierec up`
and poll their list until it reflects the write, then a write burst and the retrain baseline."""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import random
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from benchmarks.live_service import Client, Service, retrain, service_up
from benchmarks.machine import Watch, say, wait_for_quiet

NEW_USER_BASE = 1_000_000  # ids above every MovieLens user
IDLE_USER_BASE = 1_900_000  # new users of the one-client reference run
FIRST_RATINGS = 8  # a new user's first POST
HALF_STARS = [step / 2 for step in range(1, 11)]
REFRESH_DONE = re.compile(r"Task movierec\.refresh_user\[[^\]]+\] succeeded in ([0-9.e-]+)s")
REFRESH_RETRY = re.compile(r"Task movierec\.refresh_user\[[^\]]+\] retry")
LOG_TROUBLE = re.compile(r"\b(ERROR|CRITICAL|Traceback|WORKER TIMEOUT)\b")


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
