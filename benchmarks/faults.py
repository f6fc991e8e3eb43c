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
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from benchmarks import freezes, kills, resources
from benchmarks.fault_harness import REPO, TRUNCATED_TEST, CaseResult, _counts, _s
from benchmarks.fault_up import Up, describe, kill_pids, start_up
from benchmarks.machine import cpu_model, memory_gib
from pipeline.settings import BUNDLED_SAMPLE
from tests.test_e2e_up import port_open, still_running

# ------------------------------------------------------------------------------ the run


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
CASES: dict[str, Case] = {**kills.CASES, **resources.CASES, **freezes.CASES}
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
NUMBERS = {**kills.NUMBERS, **resources.NUMBERS, "ctrl-c": "-", **freezes.NUMBERS}
TITLES = {
    **kills.TITLES,
    **resources.TITLES,
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
    cpu = cpu_model()
    memory = memory_gib()
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
