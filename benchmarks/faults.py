"""Fault injection against a running `movierec up`: what clients see while one part dies or
runs out of room, how long until it recovers, and what is lost.

    python -m benchmarks.faults --seconds 30 [--cases redis-kill,postgres-kill,...] [--json FILE]

Each group of cases starts one `movierec up` on ml-latest-small (or `--data`) in a folder of its
own (embedded Redis and PostgreSQL, a worker with beat, the web server), drives it over HTTP on
127.0.0.1 only and injects one fault per case. Every case returns a `CaseResult`: requests by
status, the time to recover, what was lost, and the facts `tests/test_faults.py` asserts on (it
runs the same functions with short loads, on the test suite's synthetic folder). After each
group, SIGINT to `up` must leave no process behind. The output is the Markdown of RELIABILITY.md:
the machine, the command, one row per case.

Load generators are threads with urllib, bounded in number, in time and in requests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks import freezes
from benchmarks.fault_harness import (
    JOB_TIMEOUT,
    LOCK_TTL,
    REPO,
    RETRAIN_LINE,
    TRUNCATED_TEST,
    WRITER_BASE,
    CaseResult,
    HealthWatch,
    Load,
    Up,
    _counts,
    _s,
    by_status,
    describe,
    during_outage,
    first_after,
    kill_pids,
    rating_writes,
    reads,
    server_errors,
    start_up,
    started,
    stored_ratings,
    version_reads,
)
from cache import keys, versions
from pipeline.settings import BUNDLED_SAMPLE
from tasks.celery_app import TASK_USERS_CHUNK
from tests.serving_helpers import spawn_cli, stop, wait_until
from tests.test_e2e_up import port_open, process_tree, still_running

# ------------------------------------------------------------------------------ the cases


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


def redis_oom(up: Up, seconds: float = 0, margin: int = 1 << 20) -> CaseResult:
    """maxmemory just above what Redis holds (noeviction), then a retrain."""
    result = CaseResult("redis-oom", TITLES["redis-oom"])
    old = up.active()
    before = up.namespaces()
    latest = up.out / "models" / "LATEST"
    latest_before = latest.read_text()
    with Load(up.base, 4, 10 * JOB_TIMEOUT, version_reads(up.users)) as load:
        used = up.r.info("memory")["used_memory"]
        up.r.config_set("maxmemory", used + margin)
        try:
            job = up.retrain()
            status = up.follow(job)
            lock_at_failure = up.lock_holder()
            leftover = sorted(up.namespaces() - before)
            staging = up.staging()
            users_cached = up.r.hlen(keys.VersionKeys(old).users)
            latest_unchanged = latest.read_text() == latest_before
        finally:
            up.r.config_set("maxmemory", 0)
        active = up.active()
        reset = time.monotonic()
        during = [s for s in load.samples if s.start < reset]
        up.wait_lock_free()
        lock_free_s = time.monotonic() - reset
        second = up.retrain()
        done = up.follow(second)
        load.stop()
    samples = load.samples
    result.requests = by_status(samples)
    result.recovery_s = lock_free_s
    result.recovery = "maxmemory reset -> retrain lock free"
    result.facts = {
        "maxmemory": used + margin,
        "state": status["state"],
        "error": status["error"],
        "lock_held_after_failure": lock_at_failure,
        "leftover_namespaces": leftover,
        "staging": staging,
        "active_after_failure": active,
        "version_before": old,
        "active_users_cached": users_cached,
        "latest_unchanged": latest_unchanged,
        "failed_reads": sum(1 for s in samples if s.status != 200),
        "versions_served_until_reset": sorted({s.value for s in during if s.value}),
        "next_state": done["state"],
        "next_error": done["error"],
        "next_previous": (done["result"] or {}).get("previous"),
    }
    f = result.facts
    result.lost = (
        "nothing: the failed version's keys dropped, staging empty"
        if not leftover and not staging
        else f"left in Redis: {leftover} staging {staging}"
    )
    result.notes = [
        f"job FAILURE: {str(f['error'])[:90]}; live version intact ({users_cached} users); "
        f"lock {'still held by the failed job' if lock_at_failure else 'free'} when FAILURE was "
        f"reported; after reset the next retrain ended {f['next_state']}",
    ]
    return result


def _training_fault(up: Up, result: CaseResult, models: Path) -> dict[str, Any]:
    """A retrain while `models` refuses writes: its status, what it left, what was published."""
    old = up.active()
    before_ns = up.namespaces()
    latest_before = (models / "LATEST").read_text()
    complete_before = sorted(p.name for p in models.iterdir() if not p.name.startswith("."))
    with Load(up.base, 2, 10 * JOB_TIMEOUT, version_reads(up.users)) as load:
        job = up.retrain()
        status = up.follow(job)
        load.stop()
    entries = sorted(p.name for p in models.iterdir())
    result.requests = by_status(load.samples)
    return {
        "state": status["state"],
        "error": status["error"],
        "latest_unchanged": (models / "LATEST").read_text() == latest_before,
        "new_entries": [e for e in entries if e not in complete_before],
        "new_complete_versions": [
            e for e in entries if e not in complete_before and not e.startswith(".")
        ],
        "leftover_staging": [e for e in entries if e.startswith(".") and e.endswith(".tmp")],
        "active_after": up.active(),
        "version_before": old,
        "new_namespaces": sorted(up.namespaces() - before_ns),
        "staging": up.staging(),
        "failed_reads": sum(1 for s in load.samples if s.status != 200),
    }


def output_read_only(up: Up, seconds: float = 0) -> CaseResult:
    """OUT/models made immutable (chattr +i: root ignores permission bits, not this)."""
    result = CaseResult("output-read-only", TITLES["output-read-only"])
    models = up.out / "models"
    done = subprocess.run(["chattr", "+i", str(models)], capture_output=True, text=True)
    if done.returncode != 0:
        result.skipped = f"chattr +i {models} failed: {done.stderr.strip()}"
        return result
    try:
        result.facts = _training_fault(up, result, models)
    finally:
        subprocess.run(["chattr", "-i", str(models)], check=True)
    _output_summary(result)
    return result


def output_full(up: Up, seconds: float = 0, margin: int = 512 << 10) -> CaseResult:
    """OUT/models on a tmpfs with room for what it holds plus `margin`: full mid-write."""
    result = CaseResult("output-full", TITLES["output-full"])
    models = up.out / "models"
    saved = up.tmp / "models-before-full"
    shutil.copytree(models, saved, symlinks=True)
    used = sum(-(-p.stat().st_size // 4096) * 4096 for p in saved.rglob("*") if p.is_file())
    size = used + margin + 64 * 4096  # directories and inodes take pages too
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "movierec-full", str(models)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        shutil.rmtree(saved)
        result.skipped = f"mount -t tmpfs on {models} failed: {done.stderr.strip()}"
        return result
    try:
        for entry in saved.iterdir():
            if entry.is_dir():
                shutil.copytree(entry, models / entry.name, symlinks=True)
            else:
                shutil.copy2(entry, models / entry.name)
        result.facts = _training_fault(up, result, models)
        result.facts["tmpfs_bytes"] = size
    finally:
        if subprocess.run(["umount", str(models)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(models)], check=True)
        shutil.rmtree(saved)
    _output_summary(result)
    return result


def _output_summary(result: CaseResult) -> None:
    f = result.facts
    result.recovery = "n/a"
    published = f["active_after"] != f["version_before"] or f["new_namespaces"]
    result.lost = (
        "nothing published; LATEST unchanged"
        if not published and f["latest_unchanged"]
        else f"PUBLISHED: active {f['active_after']}, new keys {f['new_namespaces']}"
    )
    result.notes = [
        f"job {f['state']}: {str(f['error'])[:100]}; new complete version folders: "
        f"{f['new_complete_versions'] or 'none'}; leftover staging: "
        f"{f['leftover_staging'] or 'none'}",
    ]


def two_beats(up: Up, seconds: float = 0, tick_timeout: float = 75.0) -> CaseResult:
    """Two extra `movierec beat` processes with an every-minute retrain: one run per tick."""
    result = CaseResult("two-beats", TITLES["two-beats"])
    old = up.active()
    env = {**up.service.env, "REDIS_URL": up.redis_url, "MOVIEREC_RETRAIN_CRON": "* * * * *"}
    logs = [up.tmp / f"beat-{i}.log" for i in range(2)]

    def recorded() -> list[str]:
        """Retrains that started running since the beats did (a job records itself)."""
        found = []
        for key in up.r.scan_iter(keys.job_key("*")):
            if key.count(b":") != 2:  # a job's chunk set, not its record
                continue
            record = up.r.hgetall(key)
            if record.get(b"kind") == b"retrain" and float(record[b"submitted_at"]) >= began:
                found.append(key.decode().rsplit(":", 1)[1])
        return found

    began = time.time()
    beats = [spawn_cli(["beat"], env, log) for log in logs]
    try:
        wait_until(
            lambda: all("Sending due task retrain" in log.read_text() for log in logs),
            tick_timeout, "both beats to send the minute's retrain", 0.2,
        )  # fmt: skip
        ticked = time.time()
        # Beat logs a send before it publishes: stop the beats only once both retrains run
        # (or 30 s later), well before the next tick.
        with suppress(AssertionError):
            wait_until(lambda: len(recorded()) >= 2, 30, "both retrains to run", 0.2)
    finally:
        for beat in beats:
            stop(beat)
    jobs = recorded()
    ends = [up.follow(job) for job in jobs]
    results = [end["result"] or {} for end in ends]
    result.requests = {}
    result.recovery = "n/a"
    result.facts = {
        "jobs": len(jobs),
        "states": [end["state"] for end in ends],
        "published": [r["version"] for r in results if "version" in r],
        "skipped": [r for r in results if r.get("status") == "skipped"],
        "previous": [r.get("previous") for r in results if "version" in r],
        "version_before": old,
        "waited_for_tick_s": ticked - began,
    }
    f = result.facts
    result.lost = "nothing"
    result.notes = [
        f"tick after {f['waited_for_tick_s']:.0f} s; {f['jobs']} retrain messages, "
        f"{len(f['published'])} published, {len(f['skipped'])} skipped by the retrain lock",
    ]
    return result


def ctrl_c(up: Up, seconds: float = 0) -> CaseResult:
    """SIGINT to `up` after the group's faults: nothing of it may stay behind."""
    result = CaseResult("ctrl-c", TITLES["ctrl-c"])
    up.snapshot()
    began = time.monotonic()
    code = up.service.stop()
    took = time.monotonic() - began
    left = still_running(up.seen)
    described = describe(left)
    kill_pids(left)
    ports = [p for p in (up.service.web_port, up.service.redis_port) if port_open(p)]
    result.recovery = "n/a"
    result.facts = {"exit_code": code, "left": described, "open_ports": ports, "stop_s": took}
    result.lost = "n/a"
    result.notes = [
        f"exit {code} in {took:.1f} s; {len(up.seen)} processes seen over the run, "
        f"{len(left)} left running{': ' + '; '.join(described) if left else ''}",
    ]
    return result


# ------------------------------------------------------------------------------ the run


Case = Callable[[Up, float], CaseResult]
CASES: dict[str, Case] = {
    "redis-kill": redis_kill,
    "postgres-kill": postgres_kill,
    "concurrent-retrains": concurrent_retrains,
    "worker-kill": worker_kill,
    "pool-kill": pool_kill,
    "redis-oom": redis_oom,
    "output-read-only": output_read_only,
    "output-full": output_full,
    "two-beats": two_beats,
    **freezes.CASES,
}
# One `up` per group; the kills run with small chunks so the users phase lasts seconds.
GROUPS: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {
    "kills": (
        {"MOVIEREC_CHUNK_USERS": "10"},
        (
            *("redis-kill", "concurrent-retrains", "worker-kill", "pool-kill", "postgres-kill"),
            *freezes.CASES,
        ),
    ),
    "resources": (
        {"MOVIEREC_CHUNK_USERS": "200"},
        ("redis-oom", "output-read-only", "output-full", "two-beats"),
    ),
}
NUMBERS = {
    "redis-kill": "1",
    "worker-kill": "2",
    "pool-kill": "3",
    "concurrent-retrains": "4",
    "postgres-kill": "8",
    "redis-oom": "5",
    "output-read-only": "6a",
    "output-full": "6b",
    "two-beats": "9",
    "ctrl-c": "-",
    **freezes.NUMBERS,
}


TITLES = {
    "redis-kill": "Redis SIGKILL under read load",
    "postgres-kill": "PostgreSQL SIGKILL during writes",
    "concurrent-retrains": "concurrent POST /jobs/retrain",
    "worker-kill": "worker main process SIGKILL mid-retrain",
    "pool-kill": "pool process SIGKILL mid-chunk",
    "redis-oom": "Redis at maxmemory during a publish (noeviction)",
    "output-read-only": "output folder read-only during training (chattr +i)",
    "output-full": "output folder full during training (small tmpfs)",
    "two-beats": "two beats at once, retrain every minute (one tick)",
    "ctrl-c": "Ctrl-C (SIGINT to `up`) after the faults above",
    **freezes.TITLES,
}


def run_case(name: str, up: Up, seconds: float) -> CaseResult:
    case = ctrl_c if name == "ctrl-c" else CASES[name]
    began, odd = time.monotonic(), len(up.odd_answers)
    try:
        result = case(up, seconds)
    except Exception as error:  # a failed case is a row too; the others still run
        result = CaseResult(name, TITLES[name], lost="?")
        lines = str(error).strip().splitlines() or [""]
        last = f" ... {lines[-1][:200]}" if len(lines) > 1 else ""
        result.notes = [f"ERROR: {type(error).__name__}: {lines[0][:200]}{last}"]
    result.seconds = time.monotonic() - began
    if len(up.odd_answers) > odd:
        result.notes.append(f"GET /jobs/<id> did not answer 200: {up.odd_answers[odd:][:3]}")
    say(f"{result.case}: {result.requests} recovery {_s(result.recovery_s)}; {result.lost}")
    return result


def run(cases: list[str], seconds: float, data: Path, work: Path) -> list[CaseResult]:
    results = []
    for group, (env, members) in GROUPS.items():
        chosen = [c for c in members if c in cases]
        if not chosen:
            continue
        say(f"starting `movierec up` for the {group} ({', '.join(chosen)})")
        up = start_up(work / group, data, **env)
        try:
            for name in chosen:
                results.append(run_case(name, up, seconds))
            results.append(run_case("ctrl-c", up, seconds))
        finally:
            up.close()
    return results


def say(message: str) -> None:
    print(f"faults: {message}", file=sys.stderr, flush=True)


def machine() -> str:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), platform.processor(),
    )  # fmt: skip
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = os.getloadavg()[0]
    return (
        f"{len(os.sched_getaffinity(0))} cores ({cpu}), {memory:.0f} GiB, Linux "
        f"{platform.release()}, Python {platform.python_version()}; load average {load:.1f} "
        "when the run started (the machine is shared)"
    )


def commit() -> str:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                          text=True).stdout.strip()  # fmt: skip
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True,
                           text=True).stdout.strip()  # fmt: skip
    return f"{head}{' + uncommitted changes' if dirty else ''}"


def markdown(results: list[CaseResult], command: str, where: str, total: float) -> str:
    lines = [
        f"Command: `{command}` ({total:.0f} s in all)",
        "",
        f"Machine: {where}. Commit {commit()}.",
        "",
        "| # | case | requests by status | time to recover | lost | notes |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        if r.skipped:
            lines.append(f"| {NUMBERS.get(r.case, '')} | {r.title} | - | - | - | "
                         f"skipped: {r.skipped} |")  # fmt: skip
            continue
        requests = _counts(r.requests) if r.requests else "-"
        recovery = "-" if r.recovery_s is None else f"{r.recovery_s:.2f} s ({r.recovery})"
        notes = " ".join(r.notes).replace("|", "/")
        lines.append(
            f"| {NUMBERS.get(r.case, '')} | {r.title} | {requests} | {recovery} | {r.lost} | "
            f"{notes} |"
        )
    lines.append(
        "| 7 | a version folder with a truncated parquet file | - | - | - | not run here: "
        f"`{TRUNCATED_TEST}` (`movierec publish` fails with one line, nothing activated) |"
    )
    return "\n".join(lines) + "\n"


@contextmanager
def workspace(keep: str | None) -> Iterator[Path]:
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        yield Path(keep)
        return
    folder = Path(tempfile.mkdtemp(prefix="movierec-faults-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each load")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated, of: "
                        + ", ".join(CASES))  # fmt: skip
    parser.add_argument("--data", default=os.environ.get("MOVIEREC_DATA") or str(BUNDLED_SAMPLE))
    parser.add_argument("--work", help="keep the runs' folders here (default: a temporary one)")
    parser.add_argument("--json", help="also write every result, facts included, to this file")
    args = parser.parse_args(argv)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        parser.error(f"unknown cases: {', '.join(unknown)}")
    where = machine()
    began = time.monotonic()
    with workspace(args.work) as work:
        results = run(cases, args.seconds, Path(args.data), work)
    total = time.monotonic() - began
    command = "python -m benchmarks.faults " + " ".join(argv if argv is not None else sys.argv[1:])
    print(markdown(results, command, where, total))
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in results], indent=2,
                                              default=str))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
