"""Pipeline speed and memory at several sizes, next to the spec's literal pipeline in the same run.

    python benchmarks/bench_pipeline.py --real ../shared/data/ml-latest-small \
        --sizes 100000 1000000 25000000 --work /tmp/movierec-bench

    python benchmarks/bench_pipeline.py --sizes 25000000 --floor --no-baseline

Synthetic data (`movierec synth`) is generated once per size and reused. Each measured run is a
fresh child process; its peak RSS comes from os.wait4, its stage timings from its own report.

`--floor` also measures the I/O floor (`benchmarks/io_floor.py`: read ratings.csv, write the
cleaned and the standardized ratings CSV) in a fresh child before and after the pipeline, and
reports the pipeline's wall time over the faster floor's, both child processes timed whole, with
the goals: <= FLOOR_GOAL times the floor and peak RSS <= RSS_GOAL_BYTES (GB = 10^9 bytes).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MIB = 1 << 20
FLOOR_GOAL = 1.3
RSS_GOAL_BYTES = 2_500_000_000
CHILD_PIPELINE = """
import json, sys, time
start = time.perf_counter()
from pipeline.run import run_pipeline
result = run_pipeline(sys.argv[1], sys.argv[2])
print(json.dumps({"timings": result.timings, "counts": result.metadata["counts"],
                  "wall_in_process": time.perf_counter() - start}))
"""


def measure(command: list[str]) -> dict:
    """Wall time, CPU time (user + system, the child's reaped children included), peak RSS
    and the JSON the child printed last."""
    start = time.perf_counter()
    child = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(command)}")
    report = json.loads(output.strip().splitlines()[-1])
    cpu = usage.ru_utime + usage.ru_stime
    return report | {
        "wall": round(wall, 2),
        "cpu": round(cpu, 2),
        "peak_rss_mb": round(usage.ru_maxrss * 1024 / MIB),
    }


def ensure_data(work: Path, size: int) -> Path:
    folder = work / f"synth-{size}"
    if not (folder / "ratings.csv").is_file():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "service.cli",
                "synth",
                "--ratings",
                str(size),
                "--out",
                str(folder),
            ],
            cwd=REPO,
            check=True,
        )
    return folder


def io_floor(data: Path, work: Path) -> dict:
    return measure([sys.executable, "benchmarks/io_floor.py", str(data), str(work / "floor")])


def bench(label: str, data: Path, work: Path, baseline: bool, floor: bool) -> dict:
    """One data set: movierec between two I/O floors (optionally), then (optionally) the spec's
    literal pipeline on the same files."""
    name = data.name
    row: dict = {"data": label}
    if floor:
        row["floor_before"] = io_floor(data, work)
    row["movierec"] = measure(
        [sys.executable, "-c", CHILD_PIPELINE, str(data), str(work / f"out-{name}")]
    )
    if floor:
        row["floor_after"] = io_floor(data, work)
    if baseline:
        row["spec_literal"] = measure(
            [sys.executable, "benchmarks/spec_literal.py", str(data), str(work / f"spec-{name}")]
        )
    return row


def table(rows: list[dict]) -> str:
    lines = [
        "| data | ratings | users | movierec wall (s) | movierec peak RSS (MiB) "
        "| spec literal wall (s) | spec literal + extrapolated favorites (s) "
        "| spec literal peak RSS (MiB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        ours, spec = row["movierec"], row.get("spec_literal")
        literal = ("-", "-", "-")
        if spec is not None:
            loop = spec["timings"]["favorites_extrapolated"] - spec["timings"]["favorites_sampled"]
            literal = (
                f"{spec['wall']:.1f}",
                f"{spec['wall'] + loop:.0f}",
                str(spec["peak_rss_mb"]),
            )
        lines.append(
            f"| {row['data']} | {ours['counts']['ratings']:,} | {ours['counts']['users']:,} | "
            f"{ours['wall']:.1f} | "
            f"{ours['peak_rss_mb']:,} | {literal[0]} | {literal[1]} | {literal[2]} |"
        )
    return "\n".join(lines)


def floor_verdict(row: dict) -> str:
    """The pipeline against the faster of its two floors, and its peak RSS, against the goals."""
    before, after, ours = row["floor_before"], row["floor_after"], row["movierec"]
    floor = min(before, after, key=lambda run: run["wall"])
    ratio = ours["wall"] / floor["wall"]
    rss_goal = RSS_GOAL_BYTES / MIB
    return "\n".join(
        [
            f"I/O floor, {row['data']} {ours['counts']['ratings']:,} ratings: "
            f"before {before['wall']:.2f} s, after {after['wall']:.2f} s (in-process "
            f"{before['timings']['floor']:.2f} / {after['timings']['floor']:.2f} s; steps "
            f"{json.dumps(floor['timings'])}; peak RSS {floor['peak_rss_mb']:,} MiB)",
            f"CPU: pipeline {ours['cpu']:.2f} s, floor {floor['cpu']:.2f} s",
            f"pipeline {ours['wall']:.2f} s = {ratio:.2f}x the floor "
            f"(goal <= {FLOOR_GOAL}x: {'met' if ratio <= FLOOR_GOAL else 'not met'})",
            f"peak RSS {ours['peak_rss_mb']:,} MiB (goal <= {rss_goal:,.0f} MiB = 2.5 GB: "
            f"{'met' if ours['peak_rss_mb'] <= rss_goal else 'not met'})",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000, 25_000_000])
    parser.add_argument("--work", type=Path, default=Path("/tmp/movierec-bench"))
    parser.add_argument(
        "--real",
        type=Path,
        nargs="*",
        default=[],
        metavar="DIR",
        help="MovieLens folders to measure too, e.g. ml-latest-small",
    )
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument(
        "--floor", action="store_true", help="measure the I/O floor before and after each run"
    )
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args()
    data = [(folder.name, folder) for folder in args.real]
    data += [("synthetic", ensure_data(args.work, size)) for size in args.sizes]
    rows = [
        bench(label, folder, args.work, not args.no_baseline, args.floor) for label, folder in data
    ]
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"machine: {machine}, load average at the end {os.getloadavg()[0]:.2f}\n")
    print(table(rows))
    for row in rows:
        size = f"{row['data']} {row['movierec']['counts']['ratings']:,}"
        print(f"\nstages, {size} ratings: {json.dumps(row['movierec']['timings'])}")
        if "spec_literal" in row:
            print(f"spec literal, {size}: {json.dumps(row['spec_literal']['timings'])}")
        if "floor_before" in row:
            print(floor_verdict(row))
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
