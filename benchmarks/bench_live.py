"""Live writes: how soon a posted rating shows in the user's list, and the database at 25M ratings.

    python -m benchmarks.bench_live [--users 200] [--concurrency 32] [--synth-25m] [--json FILE]

Starts `movierec up` (its own embedded Redis and PostgreSQL) on ml-latest-small in a temporary
folder. Simulated users then post ratings concurrently: new users (ids above 1,000,000) their
first ratings, users of the data set a rating of the movie at the top of their list. After each
201 the user's `GET /recommend/user/<id>?n=10` is polled until it reflects the write. The
baseline, measured in the same run, is a retrain end to end (POST /jobs/retrain to SUCCESS):
without live refreshes a list changed only then. `up` is stopped with SIGINT at the end.

With --synth-25m it also times `movierec db import` of a 25M-rating synthetic set into a fresh
embedded server and compares the retrain's snapshot read (`db.snapshot.read_snapshot`) with
pyarrow reading the same ratings.csv, each read in a fresh child process: a full read, then
reads of only the users changed since a base version, after changing a share of the users
through the write path (--changed-shares).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from benchmarks.freshness import freshness_run
from benchmarks.live_report import markdown
from benchmarks.machine import machine
from benchmarks.synth_25m import synth_25m
from pipeline.settings import BUNDLED_SAMPLE


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=BUNDLED_SAMPLE)
    parser.add_argument("--users", type=int, default=200, help="simulated users, concurrent phase")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent clients")
    parser.add_argument("--new-share", type=float, default=0.5, help="share of new users")
    parser.add_argument("--rounds", type=int, default=1, help="writes per user, in turn")
    parser.add_argument("--idle-users", type=int, default=20, help="users of a one-client run")
    parser.add_argument("--poll-ms", type=float, default=15.0, help="GET interval after a write")
    parser.add_argument("--cap", type=float, default=10.0, help="longest wait for freshness, s")
    parser.add_argument("--max-seconds", type=float, default=300.0, help="no user starts later")
    parser.add_argument("--burst-seconds", type=float, default=10.0, help="0: no write burst")
    parser.add_argument("--retrains", type=int, default=2, help="baseline retrains in turn")
    parser.add_argument("--startup-timeout", type=float, default=300.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--max-wait", type=float, default=600.0, help="longest wait for quiet")
    parser.add_argument("--poll-quiet", type=float, default=30.0, help="seconds between checks")
    parser.add_argument("--synth-25m", action="store_true", help="also the 25M database part")
    parser.add_argument("--no-freshness", action="store_true", help="only the 25M part")
    parser.add_argument("--synth-ratings", type=int, default=25_000_000)
    parser.add_argument("--synth-dir", type=Path, default=Path("/tmp/bench-live-25m"))
    parser.add_argument("--synth-out", type=Path, default=Path("/tmp/bench-live-25m-out"))
    parser.add_argument("--repeats", type=int, default=3, help="runs of each read")
    parser.add_argument(
        "--changed-shares", type=float, nargs="*", default=[0.01, 0.1],
        help="shares of users changed since the base version, cumulative, one read set each",
    )  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the 25M data and database")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    report = {
        "command": "python -m benchmarks.bench_live " + " ".join(sys.argv[1:]),
        "machine": machine(),
    }
    with tempfile.TemporaryDirectory(prefix="movierec-bench-live-") as folder:
        work = Path(folder)
        if not args.no_freshness:
            report["freshness"] = freshness_run(args, work)
        if args.synth_25m:
            report["synth_25m"] = synth_25m(args, work)
    body = markdown(report, args)
    print(body)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=json_default))
    return 0


def json_default(value: object) -> object:
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
