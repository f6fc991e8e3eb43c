"""/health part by part: Redis, the active version, workers, beat and the database, up and down."""

from __future__ import annotations

import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import fakeredis
import pytest
from celery.signals import after_task_publish, beat_init, heartbeat_sent

from cache.publish import publish_version_dir
from cache.reader import CacheReader
from cache.redis_client import WEB, redis_from_url
from db.database import DatabaseUnavailable
from store.local import LocalBackend
from store.versions import VersionStore
from tasks import monitoring
from tasks.heartbeats import read_liveness, record_beat_tick, record_heartbeat
from tests.serving_helpers import fake_version
from web import create_app
from web.health import check_health

VERSION = "20260101T000000Z-aaaa"
STORE = VersionStore(LocalBackend(Path("no-models-here")), None)  # reachable, and empty
TRAINED = datetime.fromisoformat("2026-01-01T00:00:00+00:00").timestamp()
NOW = TRAINED + 3600.0


class FakeDatabase:
    """Answers `SELECT 1`, or fails like db.database.Database does when PostgreSQL is down."""

    def __init__(self, up: bool = True) -> None:
        self.up = up
        self.queries: list[str] = []

    @contextmanager
    def connection(self, slot: bool = True):
        if not self.up:
            raise DatabaseUnavailable("the database is unavailable: connection refused")
        yield SimpleNamespace(execute=self.queries.append)


@pytest.fixture
def r() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis()


@pytest.fixture
def reader(r, tmp_path) -> CacheReader:
    publish_version_dir(r, fake_version(tmp_path / "models", VERSION))
    return CacheReader(r)


@pytest.fixture
def everything_up(r, reader) -> CacheReader:
    record_heartbeat(r, "celery@a", NOW - 1)
    record_beat_tick(r, NOW - 5)
    return reader


def test_all_parts_up(everything_up):
    database = FakeDatabase()
    report = check_health(everything_up, database, STORE, NOW)
    assert report.ok
    assert report.body() == {
        "status": "ok",
        "model_version": VERSION,
        "down": [],
        "degraded": [],
        "parts": {
            "redis": {"status": "ok"},
            "model": {
                "status": "ok",
                "version": VERSION,
                "trained_at": "2026-01-01T00:00:00+00:00",
                "age_seconds": 3600.0,
            },
            "workers": {"status": "ok", "alive": ["celery@a"]},
            "beat": {"status": "ok", "last_tick_age_seconds": 5.0},
            "database": {"status": "ok"},
            "store": {"status": "ok", "url": STORE.url},
        },
    }
    assert database.queries == ["SELECT 1"]


def test_an_expired_heartbeat_means_the_workers_are_down(r, reader):
    record_heartbeat(r, "celery@a", NOW - 20)
    report = check_health(reader, None, STORE, NOW)
    assert report.down == ["workers"]
    workers = report.parts["workers"]
    assert workers["status"] == "down" and workers["alive"] == []
    assert workers["last_heartbeat_age_seconds"] == 20.0
    assert "15 s" in workers["error"]


def test_one_live_worker_is_enough_and_the_long_gone_are_forgotten(r, reader):
    record_heartbeat(r, "celery@gone", NOW - 7200)
    record_heartbeat(r, "celery@old", NOW - 30)
    record_heartbeat(r, "celery@new", NOW - 2)
    assert sorted(read_liveness(r).workers) == ["celery@new", "celery@old"]
    assert check_health(reader, None, STORE, NOW).parts["workers"] == {
        "status": "ok",
        "alive": ["celery@new"],
    }


def test_no_worker_ever_seen(reader):
    workers = check_health(reader, None, STORE, NOW).parts["workers"]
    assert workers["status"] == "down" and workers["last_heartbeat_age_seconds"] is None


def test_beat_not_seen_yet_is_no_failure_but_a_late_beat_is(r, reader):
    record_heartbeat(r, "celery@a", NOW)
    fresh = check_health(reader, None, STORE, NOW)
    assert fresh.parts["beat"] == {"status": "not seen yet"} and fresh.ok
    record_beat_tick(r, NOW - 200)
    late = check_health(reader, None, STORE, NOW)
    assert late.down == ["beat"]
    assert late.parts["beat"]["status"] == "late"
    assert late.parts["beat"]["last_tick_age_seconds"] == 200.0


def test_no_active_version_is_down_with_the_way_to_publish(r):
    record_heartbeat(r, "celery@a", NOW)
    report = check_health(CacheReader(r), None, STORE, NOW)
    assert report.down == ["model"] and report.body()["model_version"] is None
    assert "published" in report.parts["model"]["error"]
    assert "movierec pipeline" in report.parts["model"]["hint"]


def test_the_database_down_or_not_configured(everything_up):
    down = check_health(everything_up, FakeDatabase(up=False), STORE, NOW)
    assert down.down == ["database"]
    assert down.parts["database"] == {
        "status": "down",
        "error": "the database is unavailable: connection refused",
    }
    unset = check_health(everything_up, None, STORE, NOW)
    assert unset.ok and unset.parts["database"] == {"status": "not configured"}


def test_redis_down_leaves_what_it_keeps_unknown_and_still_checks_the_database():
    reader = CacheReader(redis_from_url("redis://127.0.0.1:1/0", WEB))
    report = check_health(reader, FakeDatabase(), STORE, NOW)
    assert report.down == ["redis"]
    assert report.parts["redis"]["status"] == "down"
    assert "ConnectionError" in report.parts["redis"]["error"]
    for part in ("model", "workers", "beat"):
        assert report.parts[part] == {"status": "unknown"}
    assert report.parts["database"] == {"status": "ok"}


def test_the_endpoint_answers_503_naming_what_is_down(r, reader):
    client = create_app({"REDIS": r, "DATABASE": FakeDatabase(up=False), "STORE": STORE})
    client = client.test_client()
    response = client.get("/health")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "down" and body["down"] == ["workers", "database"]
    assert body["model_version"] == VERSION


def test_the_endpoint_answers_200_when_everything_is_up(r, reader):
    record_heartbeat(r, "celery@a", time.time())
    client = create_app({"REDIS": r, "DATABASE": FakeDatabase(), "STORE": STORE}).test_client()
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"


@pytest.fixture
def marks(r, monkeypatch) -> fakeredis.FakeRedis:
    """The signal receivers write to `r`."""
    monkeypatch.setattr(monitoring, "marks_redis", lambda: r)
    return r


def test_a_worker_heartbeat_signal_marks_the_worker_alive(marks):
    class Heart:  # celery.worker.heartbeat.Heart, as far as the receiver looks
        eventer = SimpleNamespace(hostname="celery@host1")

    heartbeat_sent.send(sender=Heart())
    assert list(read_liveness(marks).workers) == ["celery@host1"]


def test_beat_marks_its_start_then_every_task_it_sends(marks):
    assert read_liveness(marks).beat_tick is None
    beat_init.send(sender=None)
    try:
        started = read_liveness(marks).beat_tick
        assert started is not None
        marks.delete("movierec:beat:last_tick")
        after_task_publish.send(sender="movierec.refresh_pending", headers={}, body=None)
        assert read_liveness(marks).beat_tick >= started
    finally:
        after_task_publish.disconnect(monitoring.beat_sent_task)
