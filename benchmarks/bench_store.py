"""A retrain with the versions in a local folder against the same retrain with them in S3.

    python -m benchmarks.bench_store [--ratings 5000000] [--rounds 3] [--write BENCHMARKS.md]

Synthetic data (`movierec synth`) is generated once and reused. Two `movierec up` stacks run
side by side on it, as the live benchmark starts one (each its own embedded Redis and
PostgreSQL, into which it imports the same folder, a Celery worker with beat, the web server):
one keeps its versions in its output folder (the default), the other in a bucket of a moto
S3 server (`MOVIEREC_MODELS=s3://<bucket>/models`, AWS variables naming the server). Each round
retrains both, one after the other, the first of the two alternating: `POST /jobs/retrain`
until `GET /jobs/<id>` says SUCCESS. Reported per retrain: the wall time and its phases
(training, user chunks, publish, from the job's progress), the CPU time of the stack and of
the moto server, the requests the server logged, the workers' store bytes and calls (from the
web tier's /metrics) and the size of the stored version; then the medians and their ratio
against the goal (S3 at most GOAL times the folder), the per-round ratios and the CPU ratio,
which other jobs on the machine disturb least.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from benchmarks.bench_pipeline import ensure_data
from benchmarks.freshness import worker_log_stats
from benchmarks.live_report import median, quiet_line
from benchmarks.live_service import Service, retrain, service_up
from benchmarks.machine import CLK_TCK, Watch, descendants, machine, process_table, wait_for_quiet
from benchmarks.markdown_section import write_section
from pipeline.artifacts import VersionFolder
from store.settings import MODELS_VARIABLE
from tests.s3_server import CREDENTIALS, S3Server, running_s3_server

REPO = Path(__file__).resolve().parents[1]
MIB = 1 << 20
GOAL = 1.3  # issue 19: the object store adds at most 30 %
VARIANTS = ("folder", "s3")
# Settings of ours that must not reach the stacks: each variant says where its versions live.
STORE_ENV = (MODELS_VARIABLE, "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", *CREDENTIALS)
REQUEST_LINE = re.compile(r'"(GET|PUT|POST|DELETE|HEAD) (\S+) HTTP/[0-9.]+" (\d{3})')
MARKERS = ("/trained.json", "/complete.json")
WORKER_STORE = re.compile(
    r"^movierec_worker_store_(bytes|operations)_total\{([^}]*)\} (\S+)$", re.MULTILINE
)
SETTLE_S = 1.0  # a task adds its store counts to Redis just after it ends
BEGIN, END = "<!-- bench_store: begin -->", "<!-- bench_store: end -->"
SECTION = "## Version store: a retrain with the versions in a folder and in S3"


def say(message: str) -> None:
    print(f"bench_store: {message}", file=sys.stderr, flush=True)


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """`values` in os.environ for the block: `service_up` hands the environment to `up`."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dataclass
class Stack:
    name: str
    service: Service
    store: str  # MOVIEREC_MODELS, or the default folder


@dataclass
class Moto:
    server: S3Server
    log: Path
    offset: int = 0

    def requests(self) -> dict[str, int]:
        """Requests logged since the last call, by kind (and `5xx` for server errors)."""
        with self.log.open("rb") as handle:
            handle.seek(self.offset)
            text = handle.read().decode(errors="replace")
        self.offset += len(text.encode())
        found: Counter[str] = Counter()
        for method, path, status in REQUEST_LINE.findall(text):
            found[request_kind(method, path)] += 1
            found["5xx"] += status.startswith("5")
        return dict(found)

    def stored_bytes(self, url: str, version: str) -> tuple[int, int]:
        """Objects and bytes the bucket holds under the version."""
        import boto3

        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        client = boto3.client(
            "s3",
            endpoint_url=self.server.endpoint,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
        )
        sizes = [
            item["Size"]
            for page in client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=f"{prefix}/{version}/"
            )
            for item in page.get("Contents", [])
        ]
        return len(sizes), sum(sizes)


def store_counts(base: str) -> Counter[str]:
    """The workers' store traffic so far as /metrics shows it: bytes up and down, and calls."""
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
        text = response.read().decode()
    found: Counter[str] = Counter()
    for kind, labels, value in WORKER_STORE.findall(text):
        found[labels.split('"')[1] if kind == "bytes" else "calls"] += float(value)
    return found


def request_kind(method: str, path: str) -> str:
    """LIST, or the method and what it read: a chunk part, a marker, a version file."""
    if method != "GET":
        return method
    key = path.split("?", 1)[0]
    if "list-type=" in path or "delimiter=" in path or key.count("/") < 3:
        return "LIST"
    if "/user_parts/" in key:
        return "GET part"
    return "GET marker" if key.endswith(MARKERS) else "GET file"


def folder_bytes(folder: Path) -> tuple[int, int]:
    sizes = [path.stat().st_size for path in folder.rglob("*") if path.is_file()]
    return len(sizes), sum(sizes)


def cpu_ticks(roots: list[int]) -> int:
    """CPU ticks used so far by the processes below `roots` (themselves included)."""
    table = process_table()
    pids = set().union(*(descendants(root, table) for root in roots))
    return sum(table[pid][1] for pid in pids if pid in table)


def phases(stages: list[tuple[str, float]], total: float) -> dict[str, float]:
    """Training, user chunks and publish, from when the job's progress first named each."""
    first = {}
    for stage, seconds in stages:
        first.setdefault(stage.split(":")[0], seconds)
    users, publish = first.get("users", math.nan), first.get("publish", math.nan)
    return {"train_s": users, "users_s": publish - users, "publish_s": total - publish}


def one_retrain(stack: Stack, moto: Moto, args: argparse.Namespace, label: str) -> dict:
    quiet = wait_for_quiet(label, args)
    moto.requests()  # what the other stack's idle workers asked for meanwhile is not ours
    mine, server = stack.service.process.pid, moto.server.process.pid
    before_stack, before_moto = cpu_ticks([mine]), cpu_ticks([server])
    counted = store_counts(stack.service.base)
    with Watch() as watch:
        result = retrain(stack.service, args.timeout)
    stack_cpu = (cpu_ticks([mine]) - before_stack) / CLK_TCK
    moto_cpu = (cpu_ticks([server]) - before_moto) / CLK_TCK
    time.sleep(SETTLE_S)
    moved = store_counts(stack.service.base)
    moved.subtract(counted)
    record = {
        "label": label,
        "variant": stack.name,
        **result,
        **phases(result.get("stages", []), result.get("seconds", math.nan)),
        "stack_cpu_s": stack_cpu,
        "moto_cpu_s": moto_cpu,
        "requests": moto.requests(),
        "store_up_bytes": moved["up"],
        "store_down_bytes": moved["down"],
        "store_calls": moved["calls"],
        "load1": quiet["load1"],
        "waited_s": quiet["waited_s"],
        "heavy_before": quiet["heavy_others"],
        **watch.summary(),
    }
    version = result.get("version_after")
    if version and result.get("state") == "SUCCESS":
        if stack.name == "s3":
            record["objects"], record["bytes"] = moto.stored_bytes(stack.store, version)
        else:
            folder = stack.service.out / "models" / version
            record["objects"], record["bytes"] = folder_bytes(folder)
            record["files"] = {p.name: p.stat().st_size for p in folder.iterdir() if p.is_file()}
            record["counts"] = json.loads((folder / "metadata.json").read_text())["counts"]
    say(
        f"{label}: {result.get('state')} in {result.get('seconds', math.nan):.1f} s "
        f"({record['train_s']:.1f} train, {record['users_s']:.1f} users, "
        f"{record['publish_s']:.1f} publish), load {quiet['load1']:.2f}"
    )
    return record


def run(args: argparse.Namespace, work: Path) -> dict:
    data = ensure_data(args.data_dir, args.ratings)
    for name in STORE_ENV:
        os.environ.pop(name, None)
    report: dict = {"data": str(data), "quiet": [], "rounds": []}
    with ExitStack() as stack:
        log = work / "moto.log"
        moto = Moto(stack.enter_context(running_s3_server(log)), log)
        bucket = moto.server.new_bucket()
        say(f"moto server at {moto.server.endpoint}, store {bucket}")
        stacks = []
        for name, env in (("folder", {}), ("s3", moto.server.env | {MODELS_VARIABLE: bucket})):
            (work / name).mkdir()
            report["quiet"].append(wait_for_quiet(f"before `up` ({name})", args))
            with environment(env):
                service = stack.enter_context(service_up(data, work / name, args.startup_timeout))
            default = str(service.out / "models")
            stacks.append(Stack(name, service, env.get(MODELS_VARIABLE, default)))
            report[f"startup_{name}_s"] = service.startup_s
        for number in range(1, args.rounds + 1):
            order = stacks if number % 2 else stacks[::-1]
            for one in order:
                label = f"round {number} {one.name}"
                report["rounds"].append(one_retrain(one, moto, args, label))
        report["logs"] = {one.name: worker_log_stats(one.service.log) for one in stacks}
    report["counts"] = next((r["counts"] for r in report["rounds"] if "counts" in r), {})
    report["logs"]["moto_5xx"] = sum(r["requests"].get("5xx", 0) for r in report["rounds"])
    report["services"] = {
        one.name: {"exit_code": one.service.exit_code, "leftovers": one.service.leftovers}
        for one in stacks
    }
    return report


# ------------------------------------------------------------------------------- markdown


def medians(rounds: list[dict], variant: str, key: str) -> float:
    values = [r[key] for r in rounds if r["variant"] == variant and r.get("state") == "SUCCESS"]
    return median([v for v in values if not math.isnan(v)])


def paired_ratios(rounds: list[dict]) -> list[float]:
    """S3 / folder of the two retrains of each round, where both succeeded."""
    times: dict[str, dict[str, float]] = {}
    for r in rounds:
        if r.get("state") == "SUCCESS":
            times.setdefault(r["label"].split()[1], {})[r["variant"]] = r["seconds"]
    return [t["s3"] / t["folder"] for t in times.values() if len(t) == 2]


def requests_text(requests: dict[str, int]) -> str:
    shown = [f"{n} {method}" for method, n in sorted(requests.items()) if n and method != "5xx"]
    return ", ".join(shown) or "-"


def markdown(report: dict, args: argparse.Namespace) -> str:
    m, c, rounds = report["machine"], report["counts"], report["rounds"]
    folder, s3 = (medians(rounds, v, "seconds") for v in VARIANTS)
    ratio = s3 / folder
    loads = [r["load1"] for r in rounds]
    most = max(r["max_load1"] for r in rounds)
    stored = next((r for r in rounds if "files" in r), {"objects": 0, "bytes": 0, "files": {}})
    users = sum(stored["files"].get(name, 0) for name in VersionFolder.USER_FILES)
    ratings = stored["files"].get("ratings.parquet", 0)
    lines = [
        f"Command: `{report['command']}`, at commit {report['commit']} ({report['started']}).",
        "",
        f"Machine: {m['nproc']} cores (`nproc` = {m['nproc']}), {m['cpu']}, {m['memory_gib']} "
        f"GiB, Python {m['python']}, Celery {m['celery']}, pyarrow {m['pyarrow']}, "
        f"obstore {report['packages']['obstore']}, moto {report['packages']['moto']}. "
        f"Load average (1 min) before the retrains {min(loads):.2f} to {max(loads):.2f}, "
        f"at most {most:.2f} during them; before each `up`: {quiet_line(report['quiet'])}.",
        "",
        f"Data: `movierec synth --ratings {args.ratings}` ({c.get('ratings', 0):,} ratings after "
        f"cleaning, {c.get('users', 0):,} users, {c.get('movies', 0):,} movies). Each stack "
        f"imported it into its own embedded PostgreSQL and trained its first version while "
        f"starting (healthy after {report['startup_folder_s']:.0f} s with the folder, "
        f"{report['startup_s3_s']:.0f} s with S3); the retrains below read the database, reusing "
        f"the live version's ratings, as every later retrain does. A stored version: "
        f"{stored['objects']} files, {stored['bytes'] / MIB:,.1f} MiB (ratings.parquet "
        f"{ratings / MIB:,.1f} MiB, the two user files {users / MIB:,.1f} MiB). An S3 retrain "
        "uploads all of it and the chunk parts, and downloads the parts once, to merge them "
        "at publish (the workers' counts of bytes and calls, from `/metrics`, are below).",
        "",
        "| round | store | retrain (s) | training (s) | user chunks (s) | publish (s) "
        "| stack CPU (s) | store up / down (MiB), calls | moto CPU (s) | S3 requests "
        "| load before |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in rounds:
        if r.get("state") != "SUCCESS":
            lines.append(f"| {r['label']} | {r['variant']} | {r.get('state') or r.get('error')} |")
            continue
        moto = "- | -"
        if r["variant"] == "s3":
            moto = f"{r['moto_cpu_s']:.1f} | {requests_text(r['requests'])}"
        moved = (
            f"{r['store_up_bytes'] / MIB:,.1f} / {r['store_down_bytes'] / MIB:,.1f}, "
            f"{r['store_calls']:.0f}"
        )
        lines.append(
            f"| {r['label'].split()[1]} | {r['variant']} | {r['seconds']:.1f} | "
            f"{r['train_s']:.1f} | {r['users_s']:.1f} | {r['publish_s']:.1f} | "
            f"{r['stack_cpu_s']:.1f} | {moved} | {moto} | {r['load1']:.2f} |"
        )
    keys = ("seconds", "train_s", "users_s", "publish_s", "stack_cpu_s", "moto_cpu_s")
    lines += [
        "",
        "| store (medians) | retrain (s) | training (s) | user chunks (s) | publish (s) "
        "| stack CPU (s) | moto CPU (s) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for variant in VARIANTS:
        cells = [f"{medians(rounds, variant, key):.1f}" for key in keys]
        cells[-1] = cells[-1] if variant == "s3" else "-"
        lines.append(f"| {variant} | {' | '.join(cells)} |")
    verdict = "met" if ratio <= GOAL else "NOT met"
    logs, paired = report["logs"], paired_ratios(rounds)
    cpu = (medians(rounds, "s3", "stack_cpu_s") + medians(rounds, "s3", "moto_cpu_s")) / (
        medians(rounds, "folder", "stack_cpu_s")
    )
    lines += [
        "",
        f"Ratio S3 / folder of the median retrains: **{ratio:.2f}x** (goal <= {GOAL}x: "
        f"**{verdict}**). The two retrains of each round, S3 / folder: "
        f"{', '.join(f'{x:.2f}' for x in paired)} (median {median(paired):.2f}). CPU time, "
        f"the S3 stack's and moto's against the folder stack's (medians): {cpu:.2f}x. "
        "Error lines in the service logs: folder "
        f"{logs['folder']['log_errors']}, S3 {logs['s3']['log_errors']}; 5xx answers of the "
        f"moto server during the retrains: {logs['moto_5xx']}.",
    ]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratings", type=int, default=5_000_000, help="synthetic ratings")
    parser.add_argument("--rounds", type=int, default=3, help="retrains of each store")
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/bench-store"))
    parser.add_argument("--work", type=Path, default=None, help="parent of the temporary folder")
    parser.add_argument("--timeout", type=float, default=1800.0, help="longest retrain, s")
    parser.add_argument("--startup-timeout", type=float, default=1800.0, help="for each `up`")
    parser.add_argument("--max-wait", type=float, default=120.0, help="longest wait for quiet")
    parser.add_argument("--poll-quiet", type=float, default=20.0, help="seconds between checks")
    parser.add_argument("--commit", help="what the tree is, when it is not a git checkout")
    parser.add_argument("--write", type=Path, help="put the results into this markdown file")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    return parser.parse_args()


def stop_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # the context managers stop both stacks and the moto server


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    from importlib.metadata import version as package_version

    commit = (
        args.commit
        or subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
    )
    report = {
        "command": "python -m benchmarks.bench_store " + " ".join(sys.argv[1:]),
        "commit": commit or "unknown",
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
        "packages": {name: package_version(name) for name in ("obstore", "moto", "boto3")},
    }
    with tempfile.TemporaryDirectory(prefix="movierec-bench-store-", dir=args.work) as folder:
        report |= run(args, Path(folder))
    if args.json:  # first: the raw results survive a failure below
        args.json.write_text(json.dumps(report, indent=2, default=str))
    body = markdown(report, args)
    print(body)
    if args.write:
        write_section(args.write, body, SECTION, BEGIN, END)
    return 0


if __name__ == "__main__":
    sys.exit(main())
