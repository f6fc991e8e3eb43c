"""What /health reports: the state of every dependency, and which of them are down.

It is polled, so it stays cheap: two short Redis round trips and one `SELECT 1`. Workers are
judged by the heartbeats their main processes leave in Redis, never by a broadcast ping.
"""

from __future__ import annotations

import logging
import weakref
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime

import redis

from cache.reader import ActiveModel, CacheReader, NoActiveVersion
from cache.redis_client import CircuitOpen
from db.database import Database, DatabaseBusy, DatabaseTimeout, DatabaseUnavailable
from resilience import deadline
from store.objects import StoreUnavailable
from store.versions import VersionStore
from tasks.heartbeats import BEAT_LATE_SECONDS, WORKER_ALIVE_SECONDS, Liveness, read_liveness
from tasks.jobs import public_error
from web.errors import HOW_TO_PUBLISH
from web.recent import Recent

log = logging.getLogger(__name__)

OK, DOWN, LATE = "ok", "down", "late"
FAILING = (DOWN, LATE)
# A part whose failure leaves reads answering: the store (lists come from Redis), a database
# or a Redis that does not answer in time (its circuit breaker fails calls fast meanwhile).
DEGRADED = "degraded"
REDIS_SLOW = (
    "Redis did not answer in time: reads are served from this process's recent answers, or "
    "answer 503 at once, until it does"
)
UNKNOWN = "unknown"  # kept in Redis, which is down
NOT_SEEN_YET = "not seen yet"  # no beat has started against this Redis: not a failure
NOT_CONFIGURED = "not configured"  # no MOVIEREC_DATABASE_URL: writes are off, reads go on


@dataclass(frozen=True)
class HealthReport:
    parts: dict[str, dict]

    @property
    def down(self) -> list[str]:
        return [name for name, part in self.parts.items() if part["status"] in FAILING]

    @property
    def degraded(self) -> list[str]:
        return [name for name, part in self.parts.items() if part["status"] == DEGRADED]

    @property
    def ok(self) -> bool:
        return not self.down

    def body(self) -> dict:
        status = DOWN if self.down else DEGRADED if self.degraded else OK
        return {
            "status": status,
            "model_version": self.parts["model"].get("version"),
            "down": self.down,
            "degraded": self.degraded,
            "parts": self.parts,
        }


def check_health(
    reader: CacheReader,
    database: Database | None,
    store: VersionStore,
    now: float,
    part_seconds: float | None = None,
) -> HealthReport:
    """Every part's state at `now` (Unix seconds); `database` is None when none is configured.
    Each of Redis and the database gets `part_seconds` at most, so a frozen one cannot leave
    the other without time (and report it degraded too)."""
    with _share(part_seconds):
        cache, model, workers, beat = _cache_parts(reader, now)
    with _share(part_seconds):
        checked = _database(database)
    parts = {"redis": cache, "model": model, "workers": workers, "beat": beat}
    return HealthReport(parts | {"database": checked, "store": _store(store)})


def _share(seconds: float | None) -> AbstractContextManager[None]:
    return nullcontext() if seconds is None else deadline.within(seconds)


def _cache_parts(reader: CacheReader, now: float) -> tuple[dict, dict, dict, dict]:
    """Redis itself, and the model, workers and beat that Redis tells about."""
    try:
        liveness = read_liveness(reader.r)
        model = _model(reader, now)
    except (redis.TimeoutError, CircuitOpen):
        cache = {"status": DEGRADED, "error": REDIS_SLOW}
        model = workers = beat = {"status": UNKNOWN}
    except redis.RedisError as error:
        cache = {"status": DOWN, "error": public_error(error)}
        model = workers = beat = {"status": UNKNOWN}
    else:
        cache = {"status": OK}
        workers, beat = _workers(liveness, now), _beat(liveness, now)
    return cache, model, workers, beat


def version_age(model: ActiveModel, now: float) -> float | None:
    """Seconds since the version was trained; None if its metadata does not say when."""
    trained_at = model.meta.get("trained_at")
    return None if trained_at is None else now - datetime.fromisoformat(trained_at).timestamp()


def _model(reader: CacheReader, now: float) -> dict:
    try:
        model = reader.active()
    except NoActiveVersion as missing:
        return {"status": DOWN, "error": str(missing), "hint": HOW_TO_PUBLISH}
    return {
        "status": OK,
        "version": model.version,
        "trained_at": model.meta.get("trained_at"),
        "age_seconds": _rounded(version_age(model, now)),
    }


def _workers(liveness: Liveness, now: float) -> dict:
    alive = liveness.alive(now)
    if alive:
        return {"status": OK, "alive": alive}
    last = liveness.last_heartbeat()
    return {
        "status": DOWN,
        "alive": [],
        "error": f"no worker has sent a heartbeat in the last {WORKER_ALIVE_SECONDS:.0f} s",
        "last_heartbeat_age_seconds": None if last is None else _rounded(now - last),
    }


def _beat(liveness: Liveness, now: float) -> dict:
    if liveness.beat_tick is None:
        return {"status": NOT_SEEN_YET}
    age = _rounded(now - liveness.beat_tick)
    if age < BEAT_LATE_SECONDS:
        return {"status": OK, "last_tick_age_seconds": age}
    return {
        "status": LATE,
        "last_tick_age_seconds": age,
        "error": f"beat has sent no scheduled task for {age:.0f} s",
    }


def _database(database: Database | None) -> dict:
    if database is None:
        return {"status": NOT_CONFIGURED}
    try:
        with database.connection(slot=False) as conn:  # its share of the deadline bounds it
            conn.execute("SELECT 1")
    except (DatabaseTimeout, DatabaseBusy) as error:
        return {"status": DEGRADED, "error": f"{error}: writes answer 503, reads go on"}
    except DatabaseUnavailable as error:
        return {"status": DOWN, "error": str(error)}
    return {"status": OK}


STORE_CHECK_SECONDS = 10.0
_store_checks: weakref.WeakKeyDictionary[VersionStore, Recent[dict]] = weakref.WeakKeyDictionary()


def _store(store: VersionStore) -> dict:
    """Degraded, not down, when unreachable: lists and movies are served from Redis; only
    retrains and placing a new movie on a host without the model need the store. Checked at
    most every STORE_CHECK_SECONDS: /health is polled, and a hung store takes seconds to fail.
    The error's details (which may name the endpoint) go to the log only."""
    recent = _store_checks.setdefault(store, Recent(STORE_CHECK_SECONDS))
    return recent.get(lambda: _check_store(store))


def _check_store(store: VersionStore) -> dict:
    try:
        store.check()
    except StoreUnavailable as error:
        log.warning("health: %s", error)
        return {"status": DEGRADED, "url": store.url, "error": "the version store did not answer"}
    return {"status": OK, "url": store.url}


def _rounded(seconds: float | None) -> float | None:
    """Ages to a tenth of a second, never negative when clocks of two machines disagree."""
    return None if seconds is None else round(max(0.0, seconds), 1)
