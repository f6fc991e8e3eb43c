"""Cold start of `movierec pipeline`: a fresh process each time, imports included, against a
baseline commit and `python -c pass`, all in one run.

    python benchmarks/bench_cold_start.py --data ../shared/data/ml-latest-small --runs 7 \
        --before 4062fd3

Each round runs, in an order rotated from round to round so that a slow spell of the shared
machine does not fall on one column: `python -c pass`; the installed console script
(`.venv/bin/movierec pipeline --data DIR --out <fresh folder>`); the same code through
`python -m service.cli`; and the `--before` commit through `python -m service.cli` from a
`git worktree` with PYTHONPATH set, the same interpreter and libraries. Every pipeline writes
every artifact (plots included) into a folder of its own. Each command's CPU time (user +
system, its plot process included) is reported beside its wall time: on a busy machine it says
what the wall time cannot, how much work the command asked of the cores.

The import share of a tree is measured apart: the modules its pipeline process had loaded when
it finished (`sys.modules`, the plot process's not counted) are imported again in a fresh
interpreter (the garbage collector paused, as the command pauses it), timed whole, less
`python -c pass`. Nothing beyond the project's own dependencies
is needed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOAL_SECONDS = 2.0
LIBRARIES = ("numpy", "pandas", "scikit-learn", "scipy", "pyarrow", "matplotlib", "skl2onnx")
# Runs the command in-process and prints the modules it loaded, as the last line.
LOADED_MODULES = """
import json, sys
from service.cli import main
assert main(sys.argv[1:]) == 0
print(json.dumps(sorted(sys.modules)))
"""
# Imports the given modules in order, skipping any that cannot be imported on their own, with
# the garbage collector paused as `movierec pipeline` pauses it for its imports.
IMPORT_ALL = """
import gc, importlib, json, sys
gc.disable()
for name in json.load(sys.stdin):
    try:
        importlib.import_module(name)
    except Exception:
        pass
"""


@dataclass
class Column:
    """One command measured in every round."""

    name: str
    command: Sequence[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = REPO
    writes: bool = True  # takes `--out <fresh folder>`
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)  # user + system, the plot process included

    def run(self, work: Path) -> None:
        command = list(self.command)
        if self.writes:
            command += ["--out", tempfile.mkdtemp(prefix="out-", dir=work)]
        before = children_cpu()
        start = time.perf_counter()
        subprocess.run(command, cwd=self.cwd, env=os.environ | self.env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        self.walls.append(time.perf_counter() - start)
        self.cpus.append(children_cpu() - before)

    def summary(self) -> dict[str, float]:
        return {
            "median": statistics.median(self.walls),
            "min": min(self.walls),
            "cpu": statistics.median(self.cpus),
        }


def children_cpu() -> float:
    """CPU seconds of every finished child process so far, grandchildren waited for included."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def worktree(commit: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="movierec-before-"))
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(path), commit],
                   check=True, capture_output=True)  # fmt: skip
    try:
        yield path
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(path)],
                       check=True, capture_output=True)  # fmt: skip


def check_code(column: Column) -> None:
    """The baseline's interpreter also has the editable install of this checkout: make sure
    PYTHONPATH wins and the baseline runs the baseline's code."""
    probe = "import service.cli, pathlib; print(pathlib.Path(service.cli.__file__).parents[1])"
    out = subprocess.run([sys.executable, "-c", probe], cwd=column.cwd,
                         env=os.environ | column.env, check=True, capture_output=True,
                         text=True)  # fmt: skip
    if Path(out.stdout.strip()) != column.cwd.resolve():
        raise SystemExit(f"{column.name} imports {out.stdout.strip()}, not {column.cwd}")


def import_seconds(column: Column, data: Path, work: Path, rounds: int) -> list[float]:
    """Median wall of importing what `column`'s pipeline process loaded, `rounds` times."""
    out = tempfile.mkdtemp(prefix="modules-", dir=work)
    argv = ["pipeline", "--data", str(data), "--out", out]
    done = subprocess.run([sys.executable, "-c", LOADED_MODULES, *argv], cwd=column.cwd,
                          env=os.environ | column.env, check=True, capture_output=True,
                          text=True)  # fmt: skip
    modules = done.stdout.strip().splitlines()[-1]
    walls = []
    for _ in range(rounds):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", IMPORT_ALL], input=modules, cwd=column.cwd,
                       env=os.environ | column.env, check=True, text=True)  # fmt: skip
        walls.append(time.perf_counter() - start)
    return walls


def machine() -> str:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    libraries = ", ".join(f"{name} {version(name)}" for name in LIBRARIES)
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, {libraries}"


AFTER, AFTER_M, BEFORE, PASS = "movierec (after)", "-m (after)", "-m (before)", "python -c pass"


def make_columns(data: Path, before: Path) -> list[Column]:
    """The console script, the same code through -m, the baseline through -m, and pass."""
    python, pipeline = sys.executable, ["pipeline", "--data", str(data)]
    module = [python, "-m", "service.cli", *pipeline]
    return [
        Column(PASS, [python, "-c", "pass"], writes=False),
        Column(AFTER, [str(Path(python).parent / "movierec"), *pipeline]),
        Column(AFTER_M, module),
        Column(BEFORE, module, env={"PYTHONPATH": str(before)}, cwd=before),
    ]


def alternate(columns: list[Column], rounds: int, work: Path) -> None:
    for round_ in range(rounds):
        shift = round_ % len(columns)
        for column in columns[shift:] + columns[:shift]:
            column.run(work)


def report(columns: list[Column], imports: dict[str, list[float]]) -> None:
    results = {column.name: column.summary() for column in columns}
    empty = results[PASS]["median"]
    after, before = results[AFTER]["median"], results[BEFORE]["median"]
    print(f"{'command':<20}  {'median s':>9}  {'min s':>7}  {'CPU s (median)':>14}")
    for name, row in results.items():
        print(f"{name:<20}  {row['median']:>9.2f}  {row['min']:>7.2f}  {row['cpu']:>14.2f}")
    for name, walls in imports.items():
        seconds = statistics.median(walls) - empty
        print(f"imports of the {name} pipeline process: {seconds:.2f} s (median, less {PASS})")
    verdict = "met" if after <= GOAL_SECONDS else "NOT met"
    print(f"after / before: {after / before:.2f}; after / goal ({GOAL_SECONDS:g} s): "
          f"{after / GOAL_SECONDS:.2f}; goal {verdict}")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a MovieLens folder")
    parser.add_argument("--runs", type=int, default=7, help="rounds (at least 5)")
    parser.add_argument("--before", required=True, help="the baseline commit")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args()
    if args.runs < 5:
        parser.error("--runs must be at least 5")
    data = args.data.resolve()
    with worktree(args.before) as before, tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        columns = make_columns(data, before)
        check_code(columns[-1])
        load = [os.getloadavg()[0]]
        alternate(columns, args.runs, work)
        load.append(os.getloadavg()[0])
        by_name = {column.name: column for column in columns}
        imports = {
            name: import_seconds(by_name[name], data, work, args.runs) for name in (AFTER_M, BEFORE)
        }
    print(f"machine: {machine()}")
    print(f"data: {data}, {args.runs} rounds, before = {args.before}, load average "
          f"{load[0]:.2f} at the start, {load[1]:.2f} at the end\n")  # fmt: skip
    report(columns, imports)
    if args.json:
        walls = {c.name: c.walls for c in columns} | {f"imports {k}": v for k, v in imports.items()}
        cpus = {c.name: c.cpus for c in columns}
        raw = {"machine": machine(), "load": load, "walls": walls, "cpus": cpus}
        args.json.write_text(json.dumps(raw, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
