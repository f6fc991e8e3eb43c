"""The 25M-ratings scenario of bench_live: `movierec db import` of a synthetic set into a fresh
embedded server, then the retrain's snapshot read against pyarrow reading the same CSV, each
read in a fresh child process, in full and after changing a share of the users."""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.live_service import CLI, REPO, SERVICE_ENV_DROP
from benchmarks.machine import Watch, say, wait_for_quiet

CHILD_READ = """
import json, os, sys, time
mode, path = sys.argv[1], sys.argv[2]
url = os.environ.get("BENCH_LIVE_DATABASE_URL")
extra = {}
if mode == "csv":
    import pyarrow as pa, pyarrow.csv as pacsv
    types = {"userId": pa.uint32(), "movieId": pa.uint32(), "rating": pa.float32(),
             "timestamp": pa.int32()}
    options = pacsv.ConvertOptions(column_types=types)
    start = time.perf_counter()
    table = pacsv.read_csv(path, convert_options=options)
    seconds = time.perf_counter() - start
    rows = table.num_rows
    start = time.perf_counter()
    table.to_pandas()
    extra["to_pandas"] = time.perf_counter() - start
elif mode in ("snapshot", "base", "changed"):
    from dataclasses import asdict
    from pathlib import Path
    from db.snapshot import read_snapshot
    from pipeline import io
    from pipeline.artifacts import VersionFolder
    base = VersionFolder(Path(path))
    start = time.perf_counter()
    data, info = read_snapshot(url, base if mode == "changed" else None)
    seconds = time.perf_counter() - start
    rows = info.counts["ratings"]
    extra["counts"] = info.counts
    extra["reused"] = info.reused and asdict(info.reused)
    if mode == "base":  # what a retrain leaves for the next one to reuse
        base.path.mkdir(parents=True)
        base.write_ratings(data.ratings)
        io.write_json({"database": asdict(info)}, base.metadata)
else:
    raise SystemExit(f"unknown read {mode}")
print(json.dumps({"seconds": seconds, "rows": rows, **extra}))
"""


def measure_command(command: list[str], env: dict[str, str], log: Path) -> dict:
    """Wall time and peak RSS (os.wait4: the largest process of the child's tree) of a command."""
    start = time.perf_counter()
    with log.open("wb") as sink:
        child = subprocess.Popen(command, cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        tail = log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{' '.join(command[:6])} failed ({code}):\n{tail}")
    return {"wall_s": wall, "peak_rss_mb": round(usage.ru_maxrss / 1024)}


def read_once(mode: str, path: Path, url: str) -> dict:
    env = {**os.environ, "BENCH_LIVE_DATABASE_URL": url}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    start = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD_READ, mode, str(path)], cwd=REPO, env=env,
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"read {mode} failed")
    result = json.loads(output.strip().splitlines()[-1])
    wall = time.perf_counter() - start
    say(f"read {mode}: {result['seconds']:.2f} s")
    return result | {"mode": mode, "child_wall_s": wall, "peak_rss_mb": usage.ru_maxrss // 1024}


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def database_facts(url: str) -> dict:
    import psycopg

    from db.snapshot import RATINGS_QUERY

    with psycopg.connect(url, autocommit=True) as conn:
        facts = {
            name: conn.execute(f"SHOW {name}").fetchone()[0]
            for name in ("server_version", "shared_buffers", "work_mem", "max_parallel_workers")
        }
        facts["ratings_rows"] = conn.execute("SELECT count(*) FROM ratings").fetchone()[0]
        facts["database_bytes"] = conn.execute(
            "SELECT pg_database_size(current_database())"
        ).fetchone()[0]
        facts["ratings_bytes"] = conn.execute(
            "SELECT pg_total_relation_size('ratings')"
        ).fetchone()[0]
        plans = {}
        for name, query in (
            ("ordered", RATINGS_QUERY),
            ("unordered", RATINGS_QUERY.split(" ORDER BY")[0]),
        ):
            rows = conn.execute(f"EXPLAIN {query}").fetchall()
            plans[name] = [row[0] for row in rows]
        rows = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {RATINGS_QUERY}").fetchall()
        plans["ordered_analyze"] = [row[0] for row in rows]
    facts["plans"] = plans
    return facts


class UserChanges:
    """Live writes through the service's own write path, each changed user rating five movies
    in one transaction; `up_to(share)` changes users until `share` of them have changed since
    the base version. The shares are cumulative: one shuffled order, each user changed once."""

    def __init__(self, conn: Any, seed: int) -> None:
        self.conn = conn
        users = conn.execute("SELECT DISTINCT user_id FROM ratings ORDER BY 1")
        self.users = [row[0] for row in users]
        self.movies = [row[0] for row in conn.execute("SELECT movie_id FROM movies ORDER BY 1")]
        self.rng = random.Random(seed)
        self.rng.shuffle(self.users)
        self.done = 0

    def up_to(self, share: float) -> dict:
        from db.writes import RatingInput, store_ratings
        from web.bodies import MAX_TIMESTAMP

        wanted = max(self.done, round(share * len(self.users)))
        start = time.perf_counter()
        for user in self.users[self.done : wanted]:
            picks = self.rng.sample(self.movies, 5)
            items = [RatingInput(m, self.rng.randint(1, 10) / 2, MAX_TIMESTAMP) for m in picks]
            store_ratings(self.conn, user, items)
        seconds = time.perf_counter() - start
        say(f"changed {wanted - self.done:,} more users ({share:.1%} in all) in {seconds:.1f} s")
        written, self.done = wanted - self.done, wanted
        return {"share": share, "users": wanted, "written": written, "all_users": len(self.users),
                "seconds": seconds}  # fmt: skip


def synth_25m(args: argparse.Namespace, work: Path) -> dict:
    import psycopg

    from service.embedded_postgres import running_postgres

    data, out = args.synth_dir.resolve(), args.synth_out.resolve()
    disk = subprocess.run(["df", "-h", "/tmp"], capture_output=True, text=True).stdout.strip()
    say(f"disk:\n{disk}")
    need = 5 * 2**30 + (0 if (data / "ratings.csv").is_file() else 1 * 2**30)
    free = shutil.disk_usage(out.parent if out.parent.exists() else Path("/tmp")).free
    report: dict = {"df_before": disk, "synth_dir": str(data), "out": str(out)}
    if free < need:
        report["skipped"] = f"only {free / 2**30:.1f} GiB free, {need / 2**30:.0f} GiB needed"
        return report
    made_data = False
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_ENV_DROP}
    try:
        if not (data / "ratings.csv").is_file():
            say(f"generating {args.synth_ratings:,} ratings into {data} ...")
            made_data = True
            report["synth"] = measure_command(
                [*CLI, "synth", "--ratings", str(args.synth_ratings), "--out", str(data)],
                env, work / "synth.log",
            )  # fmt: skip
        report["csv_bytes"] = (data / "ratings.csv").stat().st_size
        if out.exists():
            shutil.rmtree(out)
        report["quiet_import"] = wait_for_quiet("db import 25M", args)
        say(f"db import of {data} into a fresh embedded server in {out}/postgres ...")
        with Watch() as watch:
            report["import"] = measure_command(
                [*CLI, "db", "import", "--data", str(data), "--out", str(out)],
                env, work / "import.log",
            ) | watch.summary()  # fmt: skip
        say(f"import: {json.dumps(report['import'])}")
        report["import_log_tail"] = (work / "import.log").read_text(errors="replace")[-1500:]
        report["pgdata_bytes"] = folder_bytes(out / "postgres" / "pgdata")
        with running_postgres(out / "postgres") as url:
            say("database facts and EXPLAIN ANALYZE of the ratings query ...")
            report["database"] = database_facts(url)
            report["quiet_reads"] = wait_for_quiet("reads 25M", args)
            base = work / "base-version"
            with Watch() as watch, psycopg.connect(url, autocommit=True) as conn:
                reads = [read_once("base", base, url)]
                for _ in range(args.repeats):
                    reads.append(read_once("csv", data / "ratings.csv", url))
                    reads.append(read_once("snapshot", base, url))
                changes = UserChanges(conn, args.seed)
                for share in args.changed_shares:
                    report.setdefault("changes", []).append(changes.up_to(share))
                    for _ in range(args.repeats):
                        reads.append(read_once("csv", data / "ratings.csv", url) | {"share": share})
                        reads.append(read_once("changed", base, url) | {"share": share})
            report["reads"] = reads
            report["reads_watch"] = watch.summary()
    finally:
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)
            if made_data:
                shutil.rmtree(data, ignore_errors=True)
        report["kept"] = {
            "out": out.exists(),
            "synth_dir": data.exists(),
            "synth_dir_was_there": not made_data,
        }
    return report
