"""Faults where a part dies: SIGKILL of Redis, of PostgreSQL, of the worker mid-retrain and of a
pool process mid-chunk, and ten concurrent retrain triggers. Run by benchmarks.faults."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections import Counter
from typing import Any

from benchmarks.fault_harness import (
    JOB_TIMEOUT,
    LOCK_TTL,
    RETRAIN_LINE,
    WRITER_BASE,
    CaseResult,
    Load,
    _counts,
    _s,
    by_status,
    during_outage,
    first_after,
    rating_writes,
    reads,
    server_errors,
    stored_ratings,
    version_reads,
)
from benchmarks.fault_up import HealthWatch, Up, describe, kill_pids, started
from cache import keys, versions
from tasks.celery_app import TASK_USERS_CHUNK
from tests.serving_helpers import wait_until
from tests.test_e2e_up import process_tree, still_running

TITLES = {
    "redis-kill": "Redis SIGKILL under read load",
    "postgres-kill": "PostgreSQL SIGKILL during writes",
    "concurrent-retrains": "concurrent POST /jobs/retrain",
    "worker-kill": "worker main process SIGKILL mid-retrain",
    "pool-kill": "pool process SIGKILL mid-chunk",
}
NUMBERS = {
    "redis-kill": "1",
    "worker-kill": "2",
    "pool-kill": "3",
    "concurrent-retrains": "4",
    "postgres-kill": "8",
}


def redis_kill(up: Up, seconds: float, connections: int = 16) -> CaseResult:
    """SIGKILL the embedded Redis a third of the way into a read load."""
    result = CaseResult("redis-kill", f"{TITLES['redis-kill']} ({connections} connections)")
    movies = up.movie_ids()[:400]
    version = up.active()
    victim = up.child("redis")
    up.snapshot()
    with Load(up.base, connections, seconds, reads(movies, up.users)) as load:
        time.sleep(seconds / 3)
        with HealthWatch(up) as health:
            killed = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            back = wait_until(lambda: up.redis_answers() and time.monotonic(), 30, "Redis", 0.01)
            load.wait()
            up.wait_healthy()
    samples = load.samples
    first_ok = first_after(samples, 200, killed, back)
    outage = during_outage(samples, killed, first_ok)
    result.requests = by_status(samples)
    result.recovery_s = None if first_ok is None else first_ok - back
    result.recovery = "Redis answering again -> first 200"
    result.facts = {
        "requests": len(samples),
        "per_second": len(samples) / seconds,
        "redis_restarted": up.child("redis") not in (None, victim),
        "down_s": back - killed,
        "kill_to_first_200_s": None if first_ok is None else first_ok - killed,
        "outage_statuses": dict(Counter(s.status for s in outage)),
        "server_errors": server_errors(samples, {503}),
        "non_json": sum(1 for s in samples if s.status is not None and not s.is_json),
        "no_answer": sum(1 for s in samples if s.status is None),
        "statuses": sorted({s.status for s in samples if s.status is not None}),
        "failed_after_recovery": sum(
            1 for s in samples if first_ok and s.start > first_ok + 0.5 and s.status != 200
        ),
        "version_before": version,
        "version_after": up.active(),
        "health_back_s": None if health.back() is None else health.back() - killed,
        "health_down_parts": health.down_parts(),
    }
    f = result.facts
    result.lost = (
        "nothing: the same version served after the restart (append-only file reloaded)"
        if f["version_after"] == version
        else f"the active version changed from {version} to {f['version_after']}"
    )
    result.notes = [
        f"{f['requests']:,} requests in {seconds:.0f} s; Redis down {f['down_s']:.2f} s "
        f"(0.5 s backoff + restart + AOF load); kill -> first 200 "
        f"{_s(f['kill_to_first_200_s'])}; answers in between: {_counts(f['outage_statuses'])}; "
        f"{_health(f)}",
    ]
    return result


def _health(facts: dict[str, Any]) -> str:
    if facts["health_back_s"] is None:
        return "/health never seen other than 200"
    return (
        f"/health 200 again {facts['health_back_s']:.1f} s after the kill (down meanwhile: "
        f"{', '.join(facts['health_down_parts']) or 'no answer'})"
    )


def postgres_kill(up: Up, seconds: float, connections: int = 8) -> CaseResult:
    """SIGKILL the postmaster a third of the way into a load of rating writes."""
    result = CaseResult("postgres-kill", f"{TITLES['postgres-kill']} ({connections} writers)")
    users = [WRITER_BASE + i for i in range(connections)]
    make = rating_writes(up.movie_ids(), users)
    url = up.database_url()
    victim = up.child("postgres")
    up.snapshot()
    with Load(up.base, connections, seconds, make) as load:
        time.sleep(seconds / 3)
        with HealthWatch(up) as health:
            killed = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            back = wait_until(
                lambda: up.database_answers(url) and time.monotonic(), 60, "PostgreSQL", 0.05
            )
            load.wait()
            up.wait_healthy()
    samples = load.samples
    acked = {s.tag for s in samples if s.status == 201}
    stored = stored_ratings(url, users)
    lost = acked - stored
    first_ok = first_after(samples, 201, killed, back)
    outage = during_outage(samples, killed, first_ok)
    result.requests = by_status(samples)
    result.recovery_s = None if first_ok is None else first_ok - killed
    result.recovery = "kill -> first 201"
    result.facts = {
        "requests": len(samples),
        "acknowledged": len(acked),
        "stored": len(stored),
        "lost": sorted(lost),
        "stored_without_201": len(stored - acked),
        "postgres_restarted": up.child("postgres") not in (None, victim),
        "down_s": back - killed,
        "back_to_first_201_s": None if first_ok is None else first_ok - back,
        "outage_statuses": dict(Counter(s.status for s in outage)),
        "outage_non_json": sum(1 for s in outage if s.status is not None and not s.is_json),
        "server_errors": server_errors(samples, {503}),
        "non_json": sum(1 for s in samples if s.status is not None and not s.is_json),
        "no_answer": sum(1 for s in samples if s.status is None),
        "statuses": sorted({s.status for s in samples if s.status is not None}),
        "health_back_s": None if health.back() is None else health.back() - killed,
        "health_down_parts": health.down_parts(),
    }
    f = result.facts
    result.lost = (
        f"{len(lost)} of {len(acked):,} ratings answered 201"
        + (f" (+{f['stored_without_201']} stored whose answer was not 201)"
           if f["stored_without_201"] else "")
    )  # fmt: skip
    result.notes = [
        f"server back (SELECT 1) {f['down_s']:.2f} s after the kill, first 201 "
        f"{_s(f['back_to_first_201_s'])} later; answers between the kill and that 201: "
        f"{_counts(f['outage_statuses'])}; {_health(f)}",
    ]
    return result


def concurrent_retrains(up: Up, seconds: float = 0, triggers: int = 10) -> CaseResult:
    """`triggers` POST /jobs/retrain at once: one run."""
    result = CaseResult("concurrent-retrains", f"{triggers} {TITLES['concurrent-retrains']}")
    old = up.active()
    offset = up.log_offset()
    barrier = threading.Barrier(triggers)
    answers: list[tuple[int, Any]] = [(0, None)] * triggers

    def fire(i: int) -> None:
        barrier.wait()
        answers[i] = up.post("/jobs/retrain")

    threads = [threading.Thread(target=fire, args=(i,)) for i in range(triggers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    accepted = [body["job_id"] for status, body in answers if status == 202]
    conflicts = {body.get("job_id") for status, body in answers if status == 409}
    done = up.follow(accepted[0]) if len(accepted) == 1 else None
    runs = {m.group(1) for m in RETRAIN_LINE.finditer(up.log_since(offset))}
    result.requests = dict(sorted(Counter(str(status) for status, _ in answers).items()))
    result.recovery = "n/a"
    result.facts = {
        "accepted": accepted,
        "conflict_job_ids": sorted(conflicts, key=str),
        "state": done and done["state"],
        "error": done and done["error"],
        "previous": done and (done["result"] or {}).get("previous"),
        "version_before": old,
        "version_after": up.active(),
        "runs": sorted(runs),
    }
    result.lost = "nothing"
    result.notes = [
        f"{len(runs)} retrain run(s) in the worker log; every 409 names job "
        f"{accepted[0] if accepted else '?'}; it ended {result.facts['state']}"
    ]
    return result


def worker_kill(up: Up, seconds: float = 0, readers: int = 4) -> CaseResult:
    """SIGKILL the worker's main process while a retrain trains."""
    result = CaseResult("worker-kill", TITLES["worker-kill"])
    old = up.active()
    with Load(up.base, readers, 10 * JOB_TIMEOUT, version_reads(up.users)) as load:
        job = up.retrain()
        wait_until(lambda: up.stage(job).startswith("train:"), 60, "training to start", 0.05)
        time.sleep(0.5)
        victim = up.child("worker")
        tree = {victim: started(victim), **process_tree(victim)}
        up.snapshot()
        stage = up.stage(job)
        killed = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        freed = wait_until(
            lambda: up.lock_holder() != job and time.monotonic(), 3 * LOCK_TTL + 10, "lock", 0.05
        )
        ended = wait_until(
            lambda: up.job(job)["state"] in ("SUCCESS", "FAILURE") and time.monotonic(),
            3 * LOCK_TTL + 10, "the killed job to end", 0.1,
        )  # fmt: skip
        status = up.job(job)
        back = wait_until(
            lambda: up.celery.control.ping(timeout=0.5) and time.monotonic(), 60, "worker", 0.1
        )
        survivors = [pid for pid in still_running(tree) if pid != victim]
        left = describe(survivors)
        kill_pids(survivors)  # so the cases after this one run with one beat
        up.wait_lock_free()
        second = up.retrain()
        done = up.follow(second)
        load.stop()
    samples = load.samples
    served = {s.value for s in samples if s.value}
    result.requests = by_status(samples)
    result.recovery_s = freed - killed
    result.recovery = "kill -> retrain lock free"
    result.facts = {
        "killed_in_stage": stage,
        "lock_free_s": freed - killed,
        "failure_reported_s": ended - killed,
        "worker_back_s": back - killed,
        "state": status["state"],
        "error": status["error"],
        "survivors": left,
        "next_state": done["state"],
        "next_error": done["error"],
        "next_previous": (done["result"] or {}).get("previous"),
        "next_version": (done["result"] or {}).get("version"),
        "version_before": old,
        "versions_served": sorted(served),
        "failed_reads": sum(1 for s in samples if s.status != 200),
    }
    f = result.facts
    result.lost = (
        f"the killed retrain only ({f['state']}, {str(f['error']).split(':')[0]}); it published "
        "nothing"
    )
    result.notes = [
        f"killed in {stage}; GET /jobs/<id> said FAILURE {f['failure_reported_s']:.1f} s after "
        f"the kill; worker answered pings again after {f['worker_back_s']:.1f} s; the next "
        f"retrain ended {f['next_state']} (previous = the old version: "
        f"{f['next_previous'] == old}); versions served: {len(served)}",
    ]
    if left:
        result.notes.append(f"LEFT BEHIND by the killed worker, still running: {'; '.join(left)}")
    return result


def active_chunks(up: Up) -> list[dict]:
    """The users chunks the worker says its pool processes run now, with their pids."""
    replies = up.celery.control.inspect(timeout=1.0, limit=1).active() or {}
    return [t for tasks in replies.values() for t in tasks if t["name"] == TASK_USERS_CHUNK]


def pool_kill(up: Up, seconds: float = 0) -> CaseResult:
    """SIGKILL the pool process running a users chunk; the chunk is redelivered."""
    result = CaseResult("pool-kill", TITLES["pool-kill"])
    old = up.active()
    before = up.namespaces()
    offset = up.log_offset()
    job = up.retrain()
    wait_until(lambda: up.stage(job) == "users", 120, "the users phase", 0.02)
    victim = None
    while victim is None and up.stage(job) == "users":
        running = active_chunks(up)
        if not running:
            continue
        pid, still = running[0]["worker_pid"], False
        os.kill(pid, signal.SIGSTOP)  # frozen, it cannot finish the chunk we are told it runs
        try:
            still = any(t["id"] == running[0]["id"] and t["worker_pid"] == pid
                        for t in active_chunks(up))  # fmt: skip
        finally:
            os.kill(pid, signal.SIGKILL if still else signal.SIGCONT)
        victim = running[0] if still else None
    assert victim is not None, "the users phase ended before a pool process could be killed"
    killed = time.monotonic()
    done = up.follow(job)
    finished = time.monotonic()
    log = up.log_since(offset)
    version = (done["result"] or {}).get("version")
    received = Counter(re.findall(r"Task movierec\.users_chunk\[([0-9a-f-]+)\] received", log))
    result.requests = {}
    result.recovery_s = finished - killed
    result.recovery = "kill -> job SUCCESS"
    result.facts = {
        "killed_chunk": victim["id"],
        "killed_pid": victim["worker_pid"],
        "killed_chunk_received": received[victim["id"]],
        "redelivered": sorted(task for task, n in received.items() if n > 1),
        "pool_exit_logged": "SIGKILL" in log or "WorkerLostError" in log,
        "state": done["state"],
        "error": done["error"],
        "chunks": done.get("chunks"),
        "version": version,
        "previous": (done["result"] or {}).get("previous"),
        "version_before": old,
        "active": versions.active_version(up.r),
        "publishes": len(re.findall(rf"published {version}\b", log)) if version else 0,
        "new_namespaces": sorted(up.namespaces() - before),
        "users_cached": up.r.hlen(keys.VersionKeys(version).users) if version else 0,
    }
    f = result.facts
    lost = f"{f['users_cached']} users cached"
    result.lost = "nothing" if f["users_cached"] == up.users else lost
    result.notes = [
        f"pool process killed mid-chunk (users {victim['args'][1]}-{victim['args'][2]}); the "
        f"chunk was received {f['killed_chunk_received']} times; "
        f"job {f['state']}, chunks {f['chunks']}, published {f['publishes']} time(s), "
        f"{f['users_cached']} users cached, previous = the old version: {f['previous'] == old}",
    ]
    return result


CASES = {
    "redis-kill": redis_kill,
    "postgres-kill": postgres_kill,
    "concurrent-retrains": concurrent_retrains,
    "worker-kill": worker_kill,
    "pool-kill": pool_kill,
}
