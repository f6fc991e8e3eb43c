"""Reads with hidden movies: users' lists from `movierec up` with 1% of the movies hidden,
beside none hidden, in one run.

    python -m benchmarks.bench_hidden [--rounds 3] [--seconds 10] [--write BENCHMARKS.md]

Starts `movierec up` on ml-latest-small (or `--data`), then alternates rounds of wrk on
`/recommend/user/<id>?n=10`, ids cycling over every user: one with no movie hidden, one with
the 1% most-rated movies hidden through `PATCH /movies/<id>` (those on the most lists: the
filter's worst case), shown again before the next round. The goal: throughput with hidden
movies within 10% of none hidden.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import urllib.request
from pathlib import Path
from statistics import median

import pandas as pd

from benchmarks.bench_dashboard import machine
from benchmarks.live_service import Service, service_up
from benchmarks.machine import say
from benchmarks.markdown_section import report
from benchmarks.wrk_load import LoadResult, run_wrk, write_script, wrk_version
from pipeline.settings import BUNDLED_SAMPLE

BEGIN, END = "<!-- bench_hidden:begin -->", "<!-- bench_hidden:end -->"
NONE, SOME = "none hidden", "1% hidden"
GOAL = 0.90  # throughput with hidden movies over throughput without


def most_rated(data: Path, share: float) -> list[int]:
    counts = pd.read_csv(data / "ratings.csv", usecols=["movieId"])["movieId"].value_counts()
    return [int(m) for m in counts.index[: max(1, round(share * len(counts)))]]


def set_hidden(service: Service, movies: list[int], hidden: bool) -> None:
    for movie in movies:
        request = urllib.request.Request(
            f"{service.base}/movies/{movie}",
            data=json.dumps({"hidden": hidden}).encode(),
            method="PATCH",
            headers={
                "Authorization": f"Bearer {service.token}",
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200


def run(data: Path, work: Path, rounds: int, seconds: float) -> dict[str, list[LoadResult]]:
    users = sorted(pd.read_csv(data / "ratings.csv", usecols=["userId"])["userId"].unique())
    hidden = most_rated(data, 0.01)
    script = write_script(work, "/recommend/user/", [int(u) for u in users], "?n=10")
    results: dict[str, list[LoadResult]] = {NONE: [], SOME: []}
    with service_up(data, work, startup_timeout=300) as service:
        run_wrk(service.base, script, connections=16, seconds=3, threads=2)  # warm up
        for round_ in range(rounds):
            for state in (NONE, SOME) if round_ % 2 == 0 else (SOME, NONE):
                set_hidden(service, hidden, state == SOME)
                result = run_wrk(service.base, script, connections=16, seconds=seconds, threads=2)
                say(f"round {round_ + 1}, {state}: {result.rps:,.0f} req/s, p99 {result.p99_ms} ms")
                results[state].append(result)
    return results


def markdown(results: dict[str, list[LoadResult]], command: str, hidden: int) -> str:
    rps = {state: median(r.rps for r in found) for state, found in results.items()}
    p99 = {state: median(r.p99_ms for r in found) for state, found in results.items()}
    ratio = rps[SOME] / rps[NONE]
    lines = [
        f"Command: `{command}`",
        "",
        f"Machine: {machine()}; {wrk_version()}; load average {os.getloadavg()[0]:.1f} at the "
        "end (the machine is shared: only ratios within this run count).",
        "",
        f"`GET /recommend/user/<id>?n=10` over every user of ml-latest-small, 16 connections; "
        f"{hidden} movies hidden (the 1% most rated); median of {len(results[NONE])} rounds each, "
        "alternating.",
        "",
        "| movies hidden | requests/s | p99 |",
        "|---|---|---|",
        *(f"| {state} | {rps[state]:,.0f} | {p99[state]:.1f} ms |" for state in (NONE, SOME)),
        "",
        f"With 1% hidden: {ratio:.3f} times the throughput with none (goal: at least {GOAL}).",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=BUNDLED_SAMPLE)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--write", type=Path, help="put the results into this markdown file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-hidden-") as work:
        results = run(args.data, Path(work), args.rounds, args.seconds)
    command = "python -m benchmarks.bench_hidden " + " ".join(sys.argv[1:])
    body = markdown(results, command.strip(), len(most_rated(args.data, 0.01)))
    report(body, args.write, "## Reads with hidden movies", BEGIN, END)
    return 0


if __name__ == "__main__":
    sys.exit(main())
