"""/metrics: request counters per route, job counts and durations from the workers' signals, the
active version's age; and the request counts of two web workers summed by one scrape."""

from __future__ import annotations

import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import fakeredis
import pytest
from celery.signals import task_failure, task_postrun, task_prerun
from prometheus_client.parser import text_string_to_metric_families

from cache.publish import publish_version_dir
from service.embedded_redis import free_port
from store.local import LocalBackend
from store.objects import take_counts
from store.versions import VersionStore
from tasks import monitoring
from tasks.job_metrics import read_job_runs, record_job_run
from tests.serving_helpers import fake_version, serving_env, spawn_cli, stop, wait_until
from web import create_app

VERSION = "20260101T000000Z-aaaa"
TRAINED = datetime.fromisoformat("2026-01-01T00:00:00+00:00").timestamp()


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of an exposition: (name, labels) -> value."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def r() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis()


@pytest.fixture
def client(r, tmp_path, monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    publish_version_dir(r, fake_version(tmp_path / "models", VERSION))
    return create_app({"REDIS": r}).test_client()


def scrape(client) -> dict:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    return samples(response.get_data(as_text=True))


def test_requests_are_counted_and_timed_per_route_not_per_path(client):
    before = scrape(client)
    for path in ("/movie/10", "/movie/20", "/movie/999", "/no/such/page"):
        client.get(path)
    client.delete("/movie/10")
    after = scrape(client)

    def added(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    route = {"endpoint": "/movie/<movie_id>", "method": "GET"}
    assert added("movierec_http_requests_total", **route, status="2xx") == 2
    assert added("movierec_http_requests_total", **route, status="4xx") == 1
    unmatched = {"endpoint": "unmatched", "status": "4xx"}
    assert added("movierec_http_requests_total", **unmatched, method="GET") == 1
    assert added("movierec_http_requests_total", **unmatched, method="DELETE") == 1
    assert added("movierec_http_request_duration_seconds_count", **route) == 3
    assert added("movierec_http_request_duration_seconds_bucket", **route, le="+Inf") == 3
    assert not any("/movie/10" in str(labels) for _, labels in after)


def test_the_active_version_age(client):
    found = scrape(client)
    age = value(found, "movierec_active_version_age_seconds", version=VERSION)
    assert age == pytest.approx(time.time() - TRAINED, abs=60)


def test_job_counts_and_durations_by_kind_and_outcome(client, r):
    record_job_run(r, "movierec.refresh_user", "success", 0.3)
    record_job_run(r, "movierec.refresh_user", "success", 2.0)
    record_job_run(r, "movierec.retrain", "failure", None)
    found = scrape(client)
    refresh = {"kind": "movierec.refresh_user", "outcome": "success"}
    assert value(found, "movierec_jobs_total", **refresh) == 2
    assert value(found, "movierec_job_duration_seconds_sum", **refresh) == pytest.approx(2.3)
    assert value(found, "movierec_job_duration_seconds_count", **refresh) == 2
    assert value(found, "movierec_job_duration_seconds_bucket", **refresh, le="0.1") == 0
    assert value(found, "movierec_job_duration_seconds_bucket", **refresh, le="0.5") == 1
    assert value(found, "movierec_job_duration_seconds_bucket", **refresh, le="5.0") == 2
    assert value(found, "movierec_job_duration_seconds_bucket", **refresh, le="+Inf") == 2
    killed = {"kind": "movierec.retrain", "outcome": "failure"}
    assert value(found, "movierec_jobs_total", **killed) == 1
    assert value(found, "movierec_job_duration_seconds_count", **killed) == 0


def test_buckets_of_an_older_layout_count_in_the_next_bound_up(r):
    r.hset("movierec:metrics:jobs", mapping={"k|success|count": 1, "k|success|le:0.7": 1})
    [runs] = read_job_runs(r)
    assert dict(runs.buckets)[0.5] == 0 and dict(runs.buckets)[1.0] == 1


def test_without_redis_the_request_metrics_are_still_served(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    client = create_app({"REDIS": fakeredis.FakeRedis(connected=False)}).test_client()
    client.get("/")
    found = scrape(client)
    assert value(found, "movierec_http_requests_total", endpoint="/", method="GET", status="2xx")
    assert not any(name.startswith("movierec_jobs") for name, _ in found)


class Task:
    """What the receivers read of a Celery task."""

    def __init__(self, name: str, eager: bool = False) -> None:
        self.name = name
        self.request = SimpleNamespace(is_eager=eager)


@pytest.fixture
def marks(r, monkeypatch) -> fakeredis.FakeRedis:
    monkeypatch.setattr(monitoring, "marks_redis", lambda: r)
    return r


def run(task: Task, task_id: str, state: str, fail: bool = False) -> None:
    """The signals a worker's pool process sends around one task."""
    task_prerun.send(sender=task, task_id=task_id, task=task, args=[], kwargs={})
    if fail:
        task_failure.send(sender=task, task_id=task_id, exception=RuntimeError("boom"))
    task_postrun.send(
        sender=task, task_id=task_id, task=task, args=[], kwargs={}, retval=None, state=state
    )


def test_the_signals_record_each_run_once(marks):
    refresh = Task("movierec.refresh_user")
    run(refresh, "t1", "SUCCESS")
    run(refresh, "t2", "FAILURE", fail=True)
    # A hard time limit: the main process reports the failure, no pool process runs postrun.
    task_failure.send(sender=Task("movierec.retrain"), task_id="t3", exception=TimeoutError())
    runs = {(run.kind, run.outcome): run for run in read_job_runs(marks)}
    assert sorted(runs) == [
        ("movierec.refresh_user", "failure"),
        ("movierec.refresh_user", "success"),
        ("movierec.retrain", "failure"),
    ]
    assert runs["movierec.refresh_user", "success"].count == 1
    assert runs["movierec.refresh_user", "success"].buckets[-1] == (float("inf"), 1)
    assert runs["movierec.refresh_user", "failure"].count == 1
    assert runs["movierec.retrain", "failure"].count == 1
    assert runs["movierec.retrain", "failure"].buckets[-1] == (float("inf"), 0)


def test_a_workers_store_calls_reach_the_web_scrape_through_redis(marks, tmp_path, monkeypatch):
    take_counts()  # what earlier tests in this process counted
    store = VersionStore(LocalBackend(tmp_path / "store"), None)
    (tmp_path / "report.json").write_text("{}")
    store.put_report(tmp_path / "report.json")
    assert store.read_report("other.json") is None
    run(Task("movierec.retrain"), "t5", "SUCCESS")
    assert take_counts() == {}  # taken by the task's end
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    found = scrape(create_app({"REDIS": marks}).test_client())
    worker = "movierec_worker_store_operations_total"
    assert value(found, worker, operation="put", outcome="ok") == 1
    assert value(found, worker, operation="get", outcome="missing") == 1
    assert value(found, "movierec_worker_store_bytes_total", direction="up") == 2


def test_in_process_calls_are_no_jobs(marks):
    run(Task("movierec.cleanup", eager=True), "t4", "SUCCESS", fail=True)
    assert read_job_runs(marks) == []


def get(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.read().decode()
    except urllib.error.HTTPError as error:
        return error.read().decode()


def test_two_web_workers_are_summed_by_any_scrape(tmp_path):
    """No Redis at all: `/` still answers, and the request metrics need none."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = serving_env(REDIS_URL="redis://127.0.0.1:1/0", MOVIEREC_OUTPUT=str(tmp_path / "out"))
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    before = set(Path(tempfile.gettempdir()).glob("movierec-metrics-*"))
    args = ["web", "--bind", f"127.0.0.1:{port}", "--workers", "2"]
    server = spawn_cli(args, env, tmp_path / "web.log")
    try:
        wait_until(lambda: _answers(base + "/health"), 60, f"the server (see {tmp_path}/web.log)")
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda _: get(base + "/"), range(40)))
        for _ in range(4):  # each scrape is answered by either worker
            found = samples(get(base + "/metrics"))
            index = {"endpoint": "/", "method": "GET", "status": "2xx"}
            assert value(found, "movierec_http_requests_total", **index) == 40
        created = set(Path(tempfile.gettempdir()).glob("movierec-metrics-*")) - before
        assert len(created) == 1
    finally:
        assert stop(server) == 0
    assert not any(folder.exists() for folder in created)


def _answers(url: str) -> bool:
    try:
        get(url)
    except OSError:
        return False
    return True
