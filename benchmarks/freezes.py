"""Faults where a part freezes instead of dying: SIGSTOP of Redis, of every PostgreSQL process,
or of the worker in the middle of a retrain, then SIGCONT. A frozen process keeps its sockets
open and the kernel keeps accepting, so only the clients' own deadlines end a wait.

The cases run within benchmarks.faults (`--cases redis-freeze,postgres-freeze,worker-freeze`);
tests/test_faults.py asserts the limits of RELIABILITY.md on their facts.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

from benchmarks.fault_harness import (
    LOCK_TTL,
    WRITER_BASE,
    CaseResult,
    Load,
    Req,
    Sample,
    _counts,
    _s,
    by_status,
    rating_writes,
    reads,
    stored_ratings,
    version_reads,
)
from benchmarks.fault_up import HealthWatch, Up
from tests.freezing import frozen
from tests.serving_helpers import wait_until

FREEZE_SECONDS = 12.0  # a snapshot fork of a large Redis, a VM migration
BEFORE_SECONDS = 3.0  # of load before the freeze
WRITE_LIMIT_S, READ_LIMIT_S = 5.0, 2.0  # the web tier's deadlines (web.limits)
TITLES = {
    "redis-freeze": f"Redis SIGSTOP for {FREEZE_SECONDS:.0f} s under read load",
    "postgres-freeze": (
        f"PostgreSQL SIGSTOP (every process) for {FREEZE_SECONDS:.0f} s during writes and reads"
    ),
    "worker-freeze": "worker SIGSTOP mid-retrain past its lock's lifetime; a second retrain",
}
NUMBERS = {"redis-freeze": "10", "postgres-freeze": "11", "worker-freeze": "12"}


def took(sample: Sample) -> float:
    return sample.end - sample.start


def slowest(samples: list[Sample]) -> float | None:
    return max((took(s) for s in samples), default=None)


def frozen_for(up: Up, kind: str) -> tuple[float, float]:
    """Freeze `up`'s process of `kind` (and its children) for FREEZE_SECONDS; when it stopped
    and when it resumed (time.monotonic())."""
    with frozen(up.child(kind)):
        stopped = time.monotonic()
        time.sleep(FREEZE_SECONDS)
    return stopped, time.monotonic()


def every_endpoint(users: int) -> Callable[[int, int], Req]:
    """The endpoints beside the lists, in turn: health, metrics, the dashboard, jobs, search,
    a refresh, a rating (a write, which needs Redis only for its refresh)."""

    def make(i: int, n: int) -> Req:
        user = 1 + (i * 31 + n) % users
        rating = [{"movieId": 1, "rating": 1.0 + n % 9 / 2}]
        return [
            Req("GET", "/health"),
            Req("GET", "/metrics"),
            Req("GET", "/dashboard"),
            Req("GET", f"/jobs/{uuid.UUID(int=n)}"),
            Req("GET", "/search?q=the"),
            Req("GET", "/popular?n=5"),
            Req("POST", f"/users/{user}/refresh"),
            Req("POST", f"/users/{WRITER_BASE + 2000 + i}/ratings", rating),
        ][n % 8]

    return make


def redis_freeze(up: Up, seconds: float, connections: int = 8) -> CaseResult:
    """Readers on every read endpoint, and two clients on the others, while Redis is stopped
    for FREEZE_SECONDS."""
    result = CaseResult("redis-freeze", f"{TITLES['redis-freeze']} ({connections} readers)")
    version = up.active()
    after = max(6.0, seconds - FREEZE_SECONDS - BEFORE_SECONDS)
    length = BEFORE_SECONDS + FREEZE_SECONDS + after
    with (
        Load(up.base, connections, length, reads(up.movie_ids()[:400], up.users)) as load,
        Load(up.base, 2, length, every_endpoint(up.users)) as others,
    ):
        time.sleep(BEFORE_SECONDS)
        with HealthWatch(up) as health:
            stopped, resumed = frozen_for(up, "redis")
            load.wait()
            others.wait()
    samples = load.samples
    other_during = [s for s in others.samples if s.end >= stopped and s.start < resumed]
    during = [s for s in samples if s.end >= stopped and s.start < resumed]
    late = [s for s in samples if s.status != 200 and s.end >= resumed]
    result.requests = by_status(samples)
    result.recovery_s = max((s.end - resumed for s in late), default=0.0)
    result.recovery = "SIGCONT -> the last answer other than 200"
    result.facts = {
        "requests": len(samples),
        "during": len(during),
        "slowest_s": slowest(samples),
        "over_5s": sum(1 for s in samples if took(s) > WRITE_LIMIT_S),
        "no_answer": sum(1 for s in samples if s.status is None),
        "non_json": sum(1 for s in samples if s.status is not None and not s.is_json),
        "statuses_during": dict(Counter(s.status for s in during)),
        "stale_during": sum(1 for s in during if s.stale),
        "failed_3s_after_resume": sum(
            1 for s in samples if s.start >= resumed + 3 and s.status != 200
        ),
        "health_degraded": sorted(health.degraded),
        "others": len(others.samples),
        "others_slowest_s": slowest(others.samples),
        "others_statuses_during": dict(Counter(s.status for s in other_during)),
        "version_before": version,
        "version_after": up.active(),
    }
    f = result.facts
    result.lost = (
        "nothing: the same version served after SIGCONT"
        if (f["version_after"] == version)
        else f"the active version changed to {f['version_after']}"
    )
    result.notes = [
        f"{f['requests']:,} requests; while frozen ({f['during']:,}): "
        f"{_counts(f['statuses_during'])}, {f['stale_during']:,} of them stale answers; slowest "
        f"{_s(f['slowest_s'])}, {f['over_5s']} over 5 s; last answer other than 200 "
        f"{result.recovery_s:.2f} s after SIGCONT; /health degraded: "
        f"{', '.join(f['health_degraded']) or 'never'}; health, metrics, dashboard, jobs, "
        f"search, popular, refresh and rating writes while frozen: "
        f"{_counts(f['others_statuses_during'])}, slowest {_s(f['others_slowest_s'])}",
    ]
    return result


def postgres_freeze(up: Up, seconds: float, writers: int = 3, readers: int = 6) -> CaseResult:
    """Rating writers and list readers while every PostgreSQL process is stopped."""
    title = f"{TITLES['postgres-freeze']} ({writers} writers, {readers} readers)"
    result = CaseResult("postgres-freeze", title)
    users = [WRITER_BASE + 1000 + i for i in range(writers)]
    write = rating_writes(up.movie_ids(), users)
    url = up.database_url()
    after = max(6.0, seconds - FREEZE_SECONDS - BEFORE_SECONDS)
    length = BEFORE_SECONDS + FREEZE_SECONDS + after
    with (
        Load(up.base, writers, length, write) as writes,
        Load(up.base, readers, length, version_reads(up.users)) as lists,
    ):
        time.sleep(BEFORE_SECONDS)
        with HealthWatch(up) as health:
            stopped, resumed = frozen_for(up, "postgres")
            writes.wait()
            lists.wait()
    acked = {s.tag for s in writes.samples if s.status == 201}
    stored = stored_ratings(url, users)
    frozen_reads = [s for s in lists.samples if s.end >= stopped and s.start < resumed]
    frozen_writes = [s for s in writes.samples if s.end >= stopped and s.start < resumed]
    first_201 = min((s.end for s in writes.samples if s.status == 201 and s.start >= resumed),
                    default=None)  # fmt: skip
    result.requests = by_status(writes.samples + lists.samples)
    result.recovery_s = None if first_201 is None else first_201 - resumed
    result.recovery = "SIGCONT -> first 201"
    result.facts = {
        "reads": len(lists.samples),
        "read_slowest_s": slowest(lists.samples),
        "reads_over_1s": sum(1 for s in frozen_reads if took(s) > 1.0),
        "read_statuses_during": dict(Counter(s.status for s in frozen_reads)),
        "writes": len(writes.samples),
        "write_slowest_s": slowest(writes.samples),
        "writes_over_5s": sum(1 for s in writes.samples if took(s) > WRITE_LIMIT_S),
        "write_statuses_during": dict(Counter(s.status for s in frozen_writes)),
        "no_answer": sum(1 for s in writes.samples + lists.samples if s.status is None),
        "acknowledged": len(acked),
        "lost": sorted(acked - stored),
        "stored_without_201": len(stored - acked),
        "health_degraded": sorted(health.degraded),
    }
    f = result.facts
    result.lost = f"{len(f['lost'])} of {f['acknowledged']:,} ratings answered 201" + (
        f" (+{f['stored_without_201']} stored whose answer was not 201)"
        if f["stored_without_201"]
        else ""
    )
    result.notes = [
        f"while frozen: list reads {_counts(f['read_statuses_during'])}, "
        f"{f['reads_over_1s']} over 1 s (slowest {_s(f['read_slowest_s'])} over the run); "
        f"writes {_counts(f['write_statuses_during'])}, slowest {_s(f['write_slowest_s'])}; "
        f"/health degraded: {', '.join(f['health_degraded']) or 'never'}",
    ]
    return result


def worker_freeze(up: Up, seconds: float = 0, readers: int = 4) -> CaseResult:
    """Stop the worker (and its pool) while a retrain computes users' lists, until its lock has
    lapsed and a second retrain was accepted; then resume it."""
    result = CaseResult("worker-freeze", TITLES["worker-freeze"])
    old = up.active()
    offset = up.log_offset()
    with Load(up.base, readers, 600, version_reads(up.users)) as load:
        first = up.retrain()
        wait_until(lambda: up.stage(first) == "users", 120, "the users phase", 0.05)
        with frozen(up.child("worker")):
            stopped = time.monotonic()
            lapsed = wait_until(
                lambda: up.lock_holder() != first and time.monotonic(),
                3 * LOCK_TTL + 10, "the frozen job's lock to lapse", 0.1,
            )  # fmt: skip
            first_while_frozen = up.job(first)
            second = up.retrain()  # accepted: the lock is free
            time.sleep(2)
        first_end, second_end = up.follow(first), up.follow(second)
        load.stop()
    log = up.log_since(offset)
    versions = [v for v in (_version(first_end), _version(second_end)) if v]
    served = {s.value for s in load.samples if s.value}
    result.requests = by_status(load.samples)
    result.recovery_s = lapsed - stopped
    result.recovery = "SIGSTOP -> the frozen job's lock lapsed"
    result.facts = {
        "first_state": first_end["state"],
        "first_error": first_end["error"],
        "first_state_while_frozen": first_while_frozen["state"],
        "second_state": second_end["state"],
        "second_error": second_end["error"],
        "second_previous": (second_end["result"] or {}).get("previous"),
        "published": {v: log.count(f"published {v} ") for v in versions},
        "publish_lines": log.count("published "),
        "version_before": old,
        "version_after": up.active(),
        "versions_served": sorted(served),
        "failed_reads": sum(1 for s in load.samples if s.status != 200),
    }
    f = result.facts
    result.lost = f"the frozen retrain only ({f['first_state']}); it published nothing"
    result.notes = [
        f"lock lapsed {result.recovery_s:.1f} s after SIGSTOP; the frozen job read "
        f"{f['first_state_while_frozen']} meanwhile and ended {f['first_state']} "
        f"({str(f['first_error']).split(':')[0]}) after SIGCONT; the second ended "
        f"{f['second_state']}; {f['publish_lines']} publish(es) in the log",
    ]
    return result


def _version(job: dict[str, Any]) -> str | None:
    return (job.get("result") or {}).get("version")


CASES = {"redis-freeze": redis_freeze, "postgres-freeze": postgres_freeze,
         "worker-freeze": worker_freeze}  # fmt: skip
