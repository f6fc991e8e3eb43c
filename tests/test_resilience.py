"""Deadlines, the watchdog and the circuit breaker, alone and on real frozen servers."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import psycopg
import pytest
import redis

from cache.redis_client import CircuitOpen, ClientProfile, redis_from_url
from db.database import Database, DatabaseBusy, DatabaseTimeout
from resilience import deadline
from resilience.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker, Event
from resilience.watchdog import Watchdog
from service.embedded_postgres import running_postgres
from tests.freezing import frozen
from tests.serving_helpers import redis_server

# Far above any deadline here, far below a hang: a bound, not a timing claim.
HUNG = 10.0


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_breaker_opens_on_a_timeout_and_lets_one_probe_through_per_interval():
    clock, events = Clock(), []
    breaker = CircuitBreaker("redis", 1.0, lambda name, e: events.append((name, e)), clock)
    assert breaker.admit() and breaker.state == CLOSED
    breaker.timed_out()
    assert breaker.state == OPEN and not breaker.admit()
    clock.now += 1.0
    assert breaker.admit() and breaker.state == HALF_OPEN  # the probe
    assert breaker.admit()  # its thread goes on: a connect, then the command
    others: list[bool] = []
    thread = threading.Thread(target=lambda: others.append(breaker.admit()))
    thread.start()
    thread.join()
    assert others == [False]  # nobody else while it runs
    breaker.timed_out()  # the probe failed: another interval
    clock.now += 0.5
    assert not breaker.admit() and breaker.open_for() == pytest.approx(1.5)
    clock.now += 0.5
    assert breaker.admit()
    breaker.succeeded()
    assert breaker.state == CLOSED and breaker.admit() and breaker.open_for() is None
    kinds = [e for _, e in events]
    assert kinds == [Event.TIMEOUT, Event.OPENED, Event.TIMEOUT, Event.CLOSED]


def test_a_probe_that_never_reports_back_does_not_keep_the_breaker_shut():
    clock = Clock()
    breaker = CircuitBreaker("database", 1.0, clock=clock, probe_seconds=5.0)
    breaker.timed_out()
    clock.now += 1.0
    assert breaker.admit()  # a probe that then failed with an unrelated error, silently
    clock.now += 1.0
    refused: list[bool] = []
    thread = threading.Thread(target=lambda: refused.append(breaker.admit()))
    thread.start()
    thread.join()
    assert refused == [False]  # it might still be waiting: one probe at a time
    clock.now += 4.0
    assert breaker.admit()


def test_deadlines_nest_to_the_earliest_and_end_with_their_block():
    assert deadline.remaining() is None and deadline.capped(3.0) == 3.0
    with deadline.within(10):
        with deadline.within(0.5):
            assert 0 < deadline.remaining() <= 0.5
            assert deadline.capped(3.0) <= 0.5 and deadline.capped(None) <= 0.5
        with deadline.within(60):
            assert deadline.remaining() <= 10
    assert deadline.remaining() is None


def test_the_watchdog_wakes_a_reader_past_its_deadline_and_spares_one_that_finished():
    dog = Watchdog()
    near, far = socket.socketpair()
    with near, far:
        with dog.watching(near.fileno(), 0.2) as watch:
            assert near.recv(1) == b""  # woken: the socket was shut down under it
        assert watch.fired
    near, far = socket.socketpair()
    with near, far:
        with dog.watching(near.fileno(), 0.2) as watch:
            far.sendall(b"x")
            assert near.recv(1) == b"x"
        time.sleep(0.4)
        far.sendall(b"y")
        assert near.recv(1) == b"y" and not watch.fired


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


def redis_pid(url: str) -> int:
    return int(redis.Redis.from_url(url).info("server")["process_id"])


def test_a_frozen_redis_costs_one_call_its_deadline_then_calls_fail_fast(redis_url):
    clock = Clock()
    breaker = CircuitBreaker("redis", 30.0, clock=clock)
    r = redis_from_url(redis_url, ClientProfile(timeout=2.0, retries=1, breaker=breaker))
    r.set("k", "v")
    with frozen(redis_pid(redis_url)):
        started = time.monotonic()
        with deadline.within(0.5), pytest.raises(redis.TimeoutError):
            r.get("k")
        assert time.monotonic() - started < HUNG
        assert breaker.state == OPEN
        with pytest.raises(CircuitOpen):
            r.get("k")
    clock.now += 30  # the next call is the probe: Redis answers, the breaker closes
    assert r.get("k") == b"v" and breaker.state == CLOSED


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pg")
    with running_postgres(folder) as url:
        yield url, folder


def postmaster(folder: Path) -> int:
    return int(next(folder.rglob("postmaster.pid")).read_text().split()[0])


def test_a_statement_on_a_frozen_database_is_abandoned_and_its_outcome_unknown(postgres):
    url, folder = postgres
    clock = Clock()
    breaker = CircuitBreaker("database", 30.0, clock=clock)
    db = Database(url, breaker=breaker)
    with db.connection() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS t (x int)")
    with (
        deadline.within(1.0),
        pytest.raises(DatabaseTimeout) as raised,
        db.connection() as conn,
        frozen(postmaster(folder)),
    ):
        conn.execute("INSERT INTO t VALUES (1)")
    assert raised.value.sent and breaker.state == OPEN
    with pytest.raises(DatabaseTimeout) as refused, db.connection():  # the breaker is open
        pass
    assert not refused.value.sent
    clock.now += 30
    with deadline.within(HUNG), db.connection() as conn:  # the pool dropped the abandoned one
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (1,)
    assert breaker.state == CLOSED
    db.close()


def test_a_frozen_database_cannot_hold_a_caller_while_it_waits_for_a_connection(postgres):
    url, folder = postgres
    db = Database(url)
    with db.connection() as conn:
        conn.execute("SELECT 1")  # a pooled connection, which the pool checks before reuse
    with (
        frozen(postmaster(folder)),
        deadline.within(1.0),
        pytest.raises(DatabaseTimeout),
        db.connection(),
    ):
        pass
    db.close()


def test_a_full_bulkhead_refuses_at_once(postgres):
    url, _ = postgres
    db = Database(url, slots=1)
    inside, leave = threading.Event(), threading.Event()

    def hold() -> None:
        with db.connection():
            inside.set()
            leave.wait(HUNG)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert inside.wait(HUNG)
        with pytest.raises(DatabaseBusy), db.connection():
            pass
        with db.connection(slot=False) as conn:  # /health's check, outside the slots
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        leave.set()
        holder.join()
    with db.connection() as conn:  # the slot is free again
        assert conn.execute("SELECT 1").fetchone() == (1,)
    db.close()


def test_workers_get_a_deadline_of_their_own(postgres):
    url, folder = postgres
    db = Database(url, call_seconds=0.5)
    with pytest.raises(DatabaseTimeout), db.connection() as conn, frozen(postmaster(folder)):
        conn.execute("SELECT 1")
    db.close()
    with psycopg.connect(url, connect_timeout=5) as conn:  # the server itself is fine
        assert conn.execute("SELECT 1").fetchone() == (1,)
