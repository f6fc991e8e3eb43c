"""Why the serving baseline's speed swings: the FastAPI baseline alone under wrk, with 0, 1 and
2 busy-loop processes taking cores, alternated. Needs the `bench` extra and wrk.

    python -m benchmarks.baseline_contention --out OUT --rounds 2

OUT is a `movierec pipeline` output folder (the baseline reads its CSVs). Prints, per run, the
baseline's requests/s and its CPU per request (its one process, over the measured seconds).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from tempfile import TemporaryDirectory

from benchmarks.bench_serving import baseline_command, measured_run, served
from benchmarks.wrk_load import write_script
from service.embedded_redis import LOOPBACK, free_port
from tests.serving_helpers import serving_env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="a pipeline output folder")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=12.0, help="measured, per run")
    parser.add_argument("--users", type=int, default=610, help="ids 1..users, cycled")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring")
    parser.add_argument("--wrk-threads", type=int, default=2)
    args = parser.parse_args()
    port = free_port()
    base = f"http://{LOOPBACK}:{port}"
    env = serving_env(MOVIEREC_OUTPUT=str(args.out))
    probe = f"{base}/recommend/user/1"
    with (
        TemporaryDirectory() as work,
        served(baseline_command(port), env, probe, Path(work) / "baseline.log") as server,
    ):
        script = write_script(Path(work), "/recommend/user/", range(1, args.users + 1), "?n=10")
        for round_number in range(1, args.rounds + 1):
            for busy in (0, 1, 2):
                result, cpu_us = measured_run(
                    base, script, [server.pid], busy, args.warmup, args.seconds,
                    args.connections, args.wrk_threads,
                )  # fmt: skip
                print(
                    f"round {round_number}, {busy} busy core(s): {result.rps:,.0f} requests/s, "
                    f"{cpu_us:,.0f} µs of CPU per request, p99 {result.p99_ms:.0f} ms",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
