"""Job counts and durations by kind (the task's name) and outcome, kept in one Redis hash.

Workers may run on other machines than the web, so the numbers live in Redis: a finished task
adds itself in one round trip and /metrics reads them all with one HGETALL. Durations are
counted per bucket (the smallest upper bound that holds them), made cumulative when read.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import redis

from cache import keys

# From a user refresh (well under a second) to a full retrain (hours).
DURATION_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, math.inf)
COUNT, SUM, BUCKET = "count", "sum", "le:"


@dataclass(frozen=True)
class JobRuns:
    kind: str
    outcome: str
    count: int  # every run, timed or not
    seconds: float  # the timed runs' total duration
    buckets: list[tuple[float, int]]  # (upper bound, timed runs at most that long), cumulative


def record_job_run(r: redis.Redis, kind: str, outcome: str, seconds: float | None) -> None:
    """Count one run; `seconds` is None when the task's process died before it could time it."""
    series = f"{kind}|{outcome}|"
    pipe = r.pipeline(transaction=False)
    pipe.hincrby(keys.JOB_METRICS, series + COUNT, 1)
    if seconds is not None:
        bound = next(b for b in DURATION_BUCKETS if seconds <= b)
        pipe.hincrby(keys.JOB_METRICS, f"{series}{BUCKET}{bound!r}", 1)
        pipe.hincrbyfloat(keys.JOB_METRICS, series + SUM, seconds)
    pipe.execute()


def read_job_runs(r: redis.Redis) -> list[JobRuns]:
    series: defaultdict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for field, value in r.hgetall(keys.JOB_METRICS).items():
        kind, outcome, name = field.decode().rsplit("|", 2)
        series[kind, outcome][name] = float(value)
    return [
        JobRuns(kind, outcome, int(values.get(COUNT, 0)), values.get(SUM, 0.0), _buckets(values))
        for (kind, outcome), values in sorted(series.items())
    ]


def record_store_counts(r: redis.Redis, counts: dict[tuple[str, ...], int]) -> None:
    """A worker's version-store calls and bytes since its last task, added in one round trip."""
    if not counts:
        return
    pipe = r.pipeline(transaction=False)
    for key, n in counts.items():
        pipe.hincrby(keys.STORE_METRICS, "|".join(key), n)
    pipe.execute()


def read_store_counts(r: redis.Redis) -> dict[tuple[str, ...], int]:
    return {
        tuple(field.decode().split("|")): int(value)
        for field, value in r.hgetall(keys.STORE_METRICS).items()
    }


def _buckets(values: dict[str, float]) -> list[tuple[float, int]]:
    """Cumulative counts; a bound stored by an older bucket list falls in the next one up."""
    counted = [
        (float(name[len(BUCKET) :]), n) for name, n in values.items() if name.startswith(BUCKET)
    ]
    return [(b, int(sum(n for at, n in counted if at <= b))) for b in DURATION_BUCKETS]
