"""The `movierec up` the fault cases drive: started in a folder of its own, with a Redis
client and a Celery app of its own, the processes it runs, and a watcher of its /health."""

from __future__ import annotations

import csv
import os
import re
import signal
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import redis

from benchmarks.fault_harness import JOB_TIMEOUT, LOCK_TTL
from cache import keys
from cache.settings import Settings
from service.embedded_redis import LOOPBACK
from tasks.celery_app import make_celery
from tests.serving_helpers import wait_until
from tests.test_e2e_up import Service, process_tree, still_running

# ------------------------------------------------------------------------------ processes


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def children_of(parent: int) -> dict[int, str]:
    """Live direct children: pid -> command line."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent and fields[0] != "Z":
            pid = int(stat.parent.name)
            found[pid] = cmdline(pid)
    return found


def started(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except OSError:
        return None


def describe(pids: list[int]) -> list[str]:
    return [f"{pid} {cmdline(pid)[:90]}" for pid in pids]


def kill_pids(pids: list[int]) -> None:
    """Processes of our own `up` that outlived it: SIGKILL each by its id."""
    for pid in pids:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


KINDS: dict[str, Callable[[str], bool]] = {
    "redis": lambda cmd: "redis-server" in cmd.split(" ", 1)[0],
    "postgres": lambda cmd: cmd.split(" ", 1)[0].endswith("/postgres") and " -D " in cmd,
    "worker": lambda cmd: "service.cli worker" in cmd,
    "web": lambda cmd: "service.cli web" in cmd,
}


# ------------------------------------------------------------------------------ the service


class Up:
    """One `movierec up` in `tmp`, with a Redis client and a Celery app of its own."""

    def __init__(self, tmp: Path, data: Path, **env: str) -> None:
        tmp.mkdir(parents=True, exist_ok=True)
        self.service = Service(tmp, data)
        self.service.env.update({"MOVIEREC_LOCK_TTL": str(LOCK_TTL), **env})
        self.tmp, self.out = tmp, tmp / "out"
        self.seen: dict[int, str] = {}  # every process of this `up` ever seen: pid -> start
        self.odd_answers: list[tuple[str, int, Any]] = []  # GET /jobs/<id> other than 200
        self._redis: redis.Redis | None = None
        self._celery = None

    def start(self) -> float:
        began = time.monotonic()
        self.service.start()
        self.seen.update(self.service.tree)
        return time.monotonic() - began

    @property
    def base(self) -> str:
        return self.service.base

    @property
    def pid(self) -> int:
        return self.service.process.pid

    @property
    def running(self) -> bool:
        process = getattr(self.service, "process", None)  # set once start() spawned it
        return process is not None and process.poll() is None

    @property
    def redis_url(self) -> str:
        password = (self.out / "redis" / "password").read_text().strip()
        return f"redis://:{quote(password, safe='')}@{LOOPBACK}:{self.service.redis_port}/0"

    @property
    def r(self) -> redis.Redis:
        if self._redis is None:
            self._redis = redis.Redis.from_url(
                self.redis_url, socket_timeout=5, socket_connect_timeout=1
            )
        return self._redis

    @property
    def celery(self):
        if self._celery is None:
            env = {"REDIS_URL": self.redis_url, "MOVIEREC_OUTPUT": str(self.out)}
            self._celery = make_celery(Settings.from_env(env))
        return self._celery

    def check_running(self) -> None:
        """Fail at once, with the end of its log, when `up` itself has exited."""
        if not self.running:
            log = self.service.log.read_text(errors="replace")
            said = [line for line in log.splitlines() if re.match(r"(movierec|\w+Error\b)", line)]
            raise AssertionError(
                f"`movierec up` exited ({self.service.process.poll()}); its last words:\n"
                + "\n".join(said[-8:])
            )

    def redis_answers(self) -> bool:
        self.check_running()
        probe = redis.Redis.from_url(self.redis_url, socket_timeout=0.5, socket_connect_timeout=0.2)
        try:
            return bool(probe.ping())
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
            return False
        finally:
            probe.close()

    def database_url(self) -> str:
        password = (self.out / "postgres" / "password").read_text().strip()
        cmd = next(c for c in children_of(self.pid).values() if KINDS["postgres"](c)).split()
        port = cmd[cmd.index("-p") + 1]
        return f"postgresql://postgres:{quote(password, safe='')}@{LOOPBACK}:{port}/postgres"

    def database_answers(self, url: str) -> bool:
        self.check_running()
        try:
            with psycopg.connect(url, connect_timeout=1) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            return False

    def child(self, kind: str) -> int | None:
        """The live child of `up` of that kind (redis, postgres, worker, web)."""
        found = [pid for pid, cmd in children_of(self.pid).items() if KINDS[kind](cmd)]
        return found[0] if found else None

    def snapshot(self) -> None:
        """Remember every process `up` runs now, so a later check finds those left behind."""
        self.seen.update(process_tree(self.pid))

    def get(self, path: str) -> tuple[int, Any]:
        return self.service.get(path)

    def post(self, path: str) -> tuple[int, Any]:
        return self.service.post(path)

    def active(self) -> str:
        status, body = self.get("/")
        assert status == 200, body
        return body["model_version"]

    def job(self, job_id: str) -> dict:
        status, body = self.get(f"/jobs/{job_id}")
        if status != 200:
            raise AssertionError(f"GET /jobs/{job_id} answered {status}: {body}")
        return body

    def stage(self, job_id: str) -> str:
        return (self.job(job_id).get("progress") or {}).get("stage") or ""

    def retrain(self) -> str:
        status, body = self.post("/jobs/retrain")
        assert status == 202, (status, body)
        return body["job_id"]

    def follow(self, job_id: str, timeout: float = JOB_TIMEOUT) -> dict:
        """The job's final status; any answer other than 200 on the way is kept in it, under
        `answers_not_200` (none is expected)."""
        odd: list[tuple[int, Any]] = []

        def ended() -> dict | None:
            status, body = self.get(f"/jobs/{job_id}")
            if status != 200:
                odd.append((status, body))
                self.odd_answers.append((job_id, status, body))
                return None
            return body if body["state"] in ("SUCCESS", "FAILURE") else None

        try:
            end = wait_until(ended, timeout, f"job {job_id} to end", 0.1)
        except AssertionError as error:
            raise AssertionError(f"{error}; answers other than 200: {odd[-3:]}") from None
        return {**end, "answers_not_200": odd[:5]} if odd else end

    def lock_holder(self) -> str | None:
        holder = self.r.get(keys.RETRAIN_LOCK)
        return holder.decode() if holder else None

    def wait_lock_free(self, timeout: float = 3 * LOCK_TTL + 10) -> None:
        wait_until(lambda: self.lock_holder() is None, timeout, "the retrain lock to free", 0.05)

    def namespaces(self) -> set[str]:
        """Every version with at least one key in Redis."""
        return {key.decode().split(":")[2] for key in self.r.scan_iter(keys.VERSIONS + "*")}

    def staging(self) -> list[str]:
        return [v.decode() for v in self.r.zrange(keys.STAGING, 0, -1)]

    def wait_healthy(self, timeout: float = 60.0) -> None:
        def healthy() -> bool:
            self.check_running()
            try:
                return self.get("/health")[0] == 200
            except OSError:
                return False

        wait_until(healthy, timeout, "/health to answer 200 again", 0.1)

    def log_offset(self) -> int:
        return self.service.log.stat().st_size

    def log_since(self, offset: int) -> str:
        with self.service.log.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    @cached_property
    def users(self) -> int:
        """How many users the data has; MovieLens numbers them 1..n, as the loads assume."""
        data = Path(self.service.env["MOVIEREC_DATA"])
        with (data / "ratings.csv").open(newline="", encoding="utf-8") as handle:
            return len({row["userId"] for row in csv.DictReader(handle)})

    def movie_ids(self) -> list[int]:
        data = Path(self.service.env["MOVIEREC_DATA"])
        with (data / "movies.csv").open(newline="", encoding="utf-8") as handle:
            return [int(row["movieId"]) for row in csv.DictReader(handle)]

    def close(self) -> list[int]:
        """Stop `up` if it still runs; returns (and kills) what it left behind."""
        if self.running:
            self.snapshot()
            self.service.stop()
        left = still_running(self.seen)
        kill_pids(left)
        if self._celery is not None:
            self._celery.close()
        if self._redis is not None:
            self._redis.close()
        return left


def start_up(tmp: Path, data: Path, **env: str) -> Up:
    up = Up(tmp, data, **env)
    try:
        up.start()
    except BaseException:
        up.close()
        raise
    return up


class HealthWatch:
    """Polls GET /health from a thread: whether it stopped answering 200, and when it did again."""

    def __init__(self, up: Up, every: float = 0.2) -> None:
        self.up, self.every = up, every
        self.polls: list[tuple[float, int | None, tuple[str, ...]]] = []  # when, status, down
        self.degraded: set[str] = set()  # every part it ever named degraded
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="health-watch", daemon=True)

    def __enter__(self) -> HealthWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            when = time.monotonic()
            try:
                status, body = self.up.get("/health")
            except (OSError, ValueError):
                status, body = None, {}
            self.polls.append((when, status, tuple(body.get("down") or ())))
            self.degraded.update(body.get("degraded") or ())
            self._stop.wait(self.every)

    def down_parts(self) -> list[str]:
        return sorted({part for _, _, down in self.polls for part in down})

    def back(self) -> float | None:
        """When /health first answered 200 after its last other answer; None if never down."""
        bad = [i for i, (_, status, _) in enumerate(self.polls) if status != 200]
        if not bad:
            return None
        after = self.polls[bad[-1] + 1 :]
        return after[0][0] if after else None
