"""What the fault cases share: the result each reports, HTTP loads and what to make of their
answers (benchmarks.faults runs the cases; tests/test_faults.py asserts on their facts; the
`movierec up` they drive is benchmarks.fault_up)."""

from __future__ import annotations

import json
import random
import re
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from http.client import HTTPException
from pathlib import Path
from typing import Any

import psycopg

from tests.test_e2e_up import TOKEN

REPO = Path(__file__).resolve().parents[1]
LOCK_TTL = 6  # MOVIEREC_LOCK_TTL of every `up` here: a dead retrain's lock lapses in seconds
REQUEST_TIMEOUT = 10.0
MAX_REQUESTS = 400_000  # per load, whatever its length
JOB_TIMEOUT = 180.0
WRITER_BASE = 3_000_000  # users of the write load: above every MovieLens id
TRUNCATED_TEST = "tests/test_tasks_cli.py::test_publish_of_a_truncated_version_is_one_clear_line"
RETRAIN_LINE = re.compile(r"retrain ([0-9a-f-]{36}): (\S+), \d+ users in \d+ chunks")


# ------------------------------------------------------------------------------ results


@dataclass
class CaseResult:
    case: str
    title: str
    requests: dict[str, int] = field(default_factory=dict)  # status (or failure) -> count
    recovery_s: float | None = None
    recovery: str = ""  # what recovery_s measures
    lost: str = ""
    notes: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)  # what the tests assert on
    skipped: str | None = None  # why the case could not run here
    seconds: float = 0.0  # wall time of the case


# ------------------------------------------------------------------------------ HTTP load


@dataclass(frozen=True)
class Req:
    method: str
    path: str
    body: object = None
    tag: object = None  # carried to the sample, e.g. the (user, movie) a write stores
    pick: Callable[[Any], object] | None = None  # a value to keep from the JSON answer


@dataclass(frozen=True)
class Sample:
    start: float  # time.monotonic()
    end: float
    status: int | None  # None: no HTTP answer at all
    is_json: bool
    error: str | None = None  # why there was no answer
    tag: object = None
    value: object = None
    stale: bool = False  # served from a web process's recent answers (a Cache-Status header)


def send(base: str, req: Req, timeout: float = REQUEST_TIMEOUT) -> Sample:
    data = None if req.body is None else json.dumps(req.body).encode()
    request = urllib.request.Request(base + req.path, data=data, method=req.method)
    if req.method != "GET":
        request.add_header("Authorization", f"Bearer {TOKEN}")
        request.add_header("Content-Type", "application/json")
    start = time.monotonic()
    status, raw, error, stale = None, b"", None, False
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
            stale = "Cache-Status" in response.headers
    except urllib.error.HTTPError as failed:
        status, raw = failed.code, failed.read()
    except urllib.error.URLError as failed:
        error = type(failed.reason).__name__
    except (OSError, HTTPException) as failed:
        error = type(failed).__name__
    end = time.monotonic()
    body, is_json = None, False
    if status is not None:
        with suppress(ValueError):
            body, is_json = json.loads(raw), True
    value = req.pick(body) if req.pick and is_json else None
    return Sample(start, end, status, is_json, error, req.tag, value, stale)


class Load:
    """`threads` clients, each sending `make(thread, n)` back to back until `seconds` pass, it
    is stopped, `make` returns None, or MAX_REQUESTS were sent in all."""

    def __init__(
        self, base: str, threads: int, seconds: float, make: Callable[[int, int], Req | None]
    ) -> None:
        self.base, self.make = base, make
        self.deadline = time.monotonic() + seconds
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(i,), name=f"load-{i}", daemon=True)
            for i in range(threads)
        ]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait(self) -> None:
        """Until the load's time is up."""
        for thread in self._threads:
            thread.join()

    def stop(self) -> None:
        self._stop.set()
        self.wait()

    def _run(self, i: int) -> None:
        n = 0
        while (
            not self._stop.is_set()
            and time.monotonic() < self.deadline
            and len(self.samples) < MAX_REQUESTS
        ):
            req = self.make(i, n)
            if req is None:
                return
            self.samples.append(send(self.base, req))  # list.append is atomic
            n += 1


def by_status(samples: list[Sample]) -> dict[str, int]:
    counts = Counter(str(s.status) if s.status is not None else f"no answer ({s.error})"
                     for s in samples)  # fmt: skip
    non_json = sum(1 for s in samples if s.status is not None and not s.is_json)
    if non_json:
        counts["non-JSON body"] = non_json
    return dict(sorted(counts.items()))


def reads(movies: list[int], users: int) -> Callable[[int, int], Req]:
    """The read endpoints in turn, on users and movies that exist; `/` keeps the version served."""

    def make(i: int, n: int) -> Req:
        user = 1 + (i * 37 + n * 11) % users
        kind = n % 5
        if kind == 0:
            return Req("GET", f"/recommend/user/{user}?n=10")
        if kind == 1:
            return Req("GET", f"/movie/{movies[(i + n) % len(movies)]}")
        if kind == 2:
            return Req("GET", f"/users/{user}")
        if kind == 3:
            return Req("GET", f"/recommend/movie/{movies[(i * 7 + n) % len(movies)]}?n=5")
        return Req("GET", "/", pick=lambda body: body.get("model_version"))

    return make


def rating_writes(movies: list[int], users: list[int]) -> Callable[[int, int], Req | None]:
    """Writer `i` rates every movie once as user `users[i]`, in an order of its own; each write
    is tagged with its (user, movie), to find it in the database afterwards."""
    orders = [random.Random(i).sample(movies, len(movies)) for i in range(len(users))]

    def make(i: int, n: int) -> Req | None:
        if n >= len(orders[i]):
            return None
        movie = orders[i][n]
        body = [{"movieId": movie, "rating": 4.0}]
        return Req("POST", f"/users/{users[i]}/ratings", body, tag=(users[i], movie))

    return make


def stored_ratings(url: str, users: list[int]) -> set[tuple[int, int]]:
    with psycopg.connect(url, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT user_id, movie_id FROM ratings WHERE user_id = ANY(%s)", [users]
        ).fetchall()
    return {(int(user), int(movie)) for user, movie in rows}


def version_reads(users: int) -> Callable[[int, int], Req]:
    """A user's list and the version served, in turn."""

    def make(i: int, n: int) -> Req:
        if n % 2:
            return Req("GET", f"/recommend/user/{1 + (i * 53 + n) % users}?n=10")
        return Req("GET", "/", pick=lambda body: body.get("model_version"))

    return make


def first_after(
    samples: list[Sample], status: int, since: float, not_before: float
) -> float | None:
    """When the first answer `status` arrived to a request sent after `since`, no earlier than
    `not_before`."""
    ends = [
        s.end for s in samples if s.status == status and s.start >= since and s.end >= not_before
    ]
    return min(ends, default=None)


def during_outage(samples: list[Sample], killed: float, first_ok: float | None) -> list[Sample]:
    """Answers that arrived after the kill and before the first success (all, if none came)."""
    return [s for s in samples if s.end >= killed and (first_ok is None or s.end < first_ok)]


def server_errors(samples: list[Sample], allowed: set[int]) -> int:
    """5xx answers other than the allowed ones (503: a dependency is down)."""
    return sum(1 for s in samples if s.status and s.status >= 500 and s.status not in allowed)


def _s(value: float | None) -> str:
    return "never" if value is None else f"{value:.2f} s"


def _counts(counts: dict) -> str:
    return ", ".join(f"{k}: {v:,}" for k, v in sorted(counts.items(), key=str)) or "nothing"
