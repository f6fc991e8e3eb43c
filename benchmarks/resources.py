"""Faults where a resource runs out: Redis at maxmemory during a publish, the output folder
read-only or full during training, and two beats at once. Run by benchmarks.faults."""

from __future__ import annotations

import shutil
import subprocess
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

from benchmarks.fault_harness import JOB_TIMEOUT, CaseResult, Load, by_status, version_reads
from benchmarks.fault_up import Up
from cache import keys
from tests.serving_helpers import spawn_cli, stop, wait_until

TITLES = {
    "redis-oom": "Redis at maxmemory during a publish (noeviction)",
    "output-read-only": "output folder read-only during training (chattr +i)",
    "output-full": "output folder full during training (small tmpfs)",
    "two-beats": "two beats at once, retrain every minute (one tick)",
}
NUMBERS = {"redis-oom": "5", "output-read-only": "6a", "output-full": "6b", "two-beats": "9"}


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


CASES = {
    "redis-oom": redis_oom,
    "output-read-only": output_read_only,
    "output-full": output_full,
    "two-beats": two_beats,
}
