"""Prometheus metrics: requests per route from every web process; jobs and the active version's
age from Redis, read at each scrape.

Under `movierec web`, service.web_server sets PROMETHEUS_MULTIPROC_DIR before any worker imports
prometheus_client: each web worker then writes its request metrics to files there, and a
scrape served by any one of them sums them all. Without it (tests, a plain WSGI server on
web.wsgi:app) they stay in the process.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator

import redis
from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.utils import floatToGoString

from cache.reader import ActiveModel, CacheReader, NoActiveVersion
from resilience.breaker import Event
from store.objects import BYTES as STORE_BYTES
from store.objects import OPERATIONS as STORE_OPERATIONS
from tasks.job_metrics import JobRuns, read_job_runs, read_store_counts
from web.health import version_age

log = logging.getLogger(__name__)
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"  # no route (404, 405): labelling the raw path would let clients add series

# Registered per scrape (see `exposition`), not in prometheus_client's global registry.
REQUESTS = Counter(
    "movierec_http_requests",
    "HTTP requests answered, by route, method and status class.",
    ["endpoint", "method", "status"],
    registry=None,
)
LATENCY = Histogram(
    "movierec_http_request_duration_seconds",
    "Time to answer an HTTP request, by route and method.",
    ["endpoint", "method"],
    registry=None,
)
TIMEOUTS = Counter(
    "movierec_dependency_timeouts",
    "Calls of a web process to a dependency (redis, database) that ran out of time.",
    ["dependency"],
    registry=None,
)
BREAKER_OPENINGS = Counter(
    "movierec_breaker_openings",
    "Times a web process's circuit breaker for a dependency opened (fail fast).",
    ["dependency"],
    registry=None,
)
BREAKERS_OPEN = Gauge(
    "movierec_breakers_open",
    "Web processes whose circuit breaker for the dependency is open now.",
    ["dependency"],
    registry=None,
    multiprocess_mode="livesum",
)
STALE_ANSWERS = Counter(
    "movierec_stale_answers",
    "Answers served from a web process's recent answers while Redis did not answer.",
    registry=None,
)
SERVING_METRICS = (REQUESTS, LATENCY, TIMEOUTS, BREAKER_OPENINGS, BREAKERS_OPEN, STALE_ANSWERS)


def install_request_metrics(app: Flask) -> None:
    """Count and time every request, labelled by its route rule (`/movie/<movie_id>`)."""
    app.before_request(_start_timer)
    app.after_request(_count_request)


def exposition(reader: CacheReader) -> Response:
    registry = CollectorRegistry()
    if MULTIPROCESS_DIR in os.environ:
        MultiProcessCollector(registry)
    else:
        for metric in (*SERVING_METRICS, STORE_OPERATIONS, STORE_BYTES):
            registry.register(metric)
    registry.register(CacheMetrics(reader))
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


class CacheMetrics:
    """Job counts and durations the workers recorded, and the active version's age."""

    def __init__(self, reader: CacheReader) -> None:
        self.reader = reader

    def collect(self) -> Iterator[Metric]:
        try:
            runs = read_job_runs(self.reader.r)
            store_counts = read_store_counts(self.reader.r)
            model = self._active()
        except redis.RedisError as error:  # the request metrics are still worth a scrape
            log.warning("metrics: the cache (Redis) is unavailable: %s", error)
            return
        yield from _job_families(runs)
        yield from _worker_store_families(store_counts)
        age = None if model is None else version_age(model, time.time())
        if age is not None:
            gauge = GaugeMetricFamily(
                "movierec_active_version_age_seconds",
                "Seconds since the active model version was trained.",
                labels=["version"],
            )
            gauge.add_metric([model.version], age)
            yield gauge

    def _active(self) -> ActiveModel | None:
        try:
            return self.reader.active()
        except NoActiveVersion:
            return None


def _worker_store_families(counts: dict[tuple[str, ...], int]) -> tuple[Metric, Metric]:
    """The workers' version-store calls and bytes, which they add to Redis after each task
    (the web processes' own are movierec_store_operations_total and movierec_store_bytes_total)."""
    operations = CounterMetricFamily(
        "movierec_worker_store_operations",
        "Workers' calls to the version store, by operation and outcome (ok, missing, error).",
        labels=["operation", "outcome"],
    )
    moved = CounterMetricFamily(
        "movierec_worker_store_bytes",
        "Bytes workers moved to or from the version store, by direction (up, down).",
        labels=["direction"],
    )
    for key, n in sorted(counts.items()):
        family = operations if key[0] == "operations" else moved
        family.add_metric(list(key[1:]), n)
    return operations, moved


def _job_families(runs: list[JobRuns]) -> tuple[Metric, Metric]:
    labels = ["kind", "outcome"]
    jobs = CounterMetricFamily(
        "movierec_jobs", "Jobs finished, by kind and outcome.", labels=labels
    )
    durations = HistogramMetricFamily(
        "movierec_job_duration_seconds",
        "How long finished jobs ran, by kind and outcome (not those whose process died).",
        labels=labels,
    )
    for run in runs:
        jobs.add_metric([run.kind, run.outcome], run.count)
        buckets = [(floatToGoString(bound), n) for bound, n in run.buckets]
        durations.add_metric([run.kind, run.outcome], buckets, run.seconds)
    return jobs, durations


def record_breaker_event(dependency: str, event: Event) -> None:
    """A breaker's listener: its timeouts, openings and state, summed over the web processes."""
    if event is Event.TIMEOUT:
        TIMEOUTS.labels(dependency).inc()
    elif event is Event.OPENED:
        BREAKER_OPENINGS.labels(dependency).inc()
        BREAKERS_OPEN.labels(dependency).set(1)
    else:
        BREAKERS_OPEN.labels(dependency).set(0)


def count_stale_answer() -> None:
    STALE_ANSWERS.inc()


def _start_timer() -> None:
    g.metrics_started = time.perf_counter()


def _count_request(response: Response) -> Response:
    endpoint = request.url_rule.rule if request.url_rule else UNMATCHED
    method = request.method if request.method in METHODS else "OTHER"
    REQUESTS.labels(endpoint, method, f"{response.status_code // 100}xx").inc()
    LATENCY.labels(endpoint, method).observe(time.perf_counter() - g.metrics_started)
    return response
