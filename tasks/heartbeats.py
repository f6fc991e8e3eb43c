"""Liveness marks in Redis: each worker's last heartbeat and beat's last tick, read by /health.

Workers share one sorted set (hostname -> time) rather than a key each with a TTL: /health reads
it with one command instead of scanning the keyspace, and can say when a dead worker was last
seen. Times are Unix seconds of the writer's clock.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from cache import keys
from tasks.celery_app import REFRESH_SWEEP_EVERY_SECONDS

WORKER_ALIVE_SECONDS = 15.0  # a worker's main process sends a heartbeat every 2 s
FORGET_WORKER_SECONDS = 3600.0  # a worker silent this long leaves the report
# Beat sends the pending-refresh sweep every 30 s; missing three means it stopped.
BEAT_LATE_SECONDS = 3 * REFRESH_SWEEP_EVERY_SECONDS


@dataclass(frozen=True)
class Liveness:
    workers: dict[str, float]  # hostname -> last heartbeat
    beat_tick: float | None  # None: no beat has run against this Redis yet

    def alive(self, now: float) -> list[str]:
        return sorted(name for name, at in self.workers.items() if now - at < WORKER_ALIVE_SECONDS)

    def last_heartbeat(self) -> float | None:
        return max(self.workers.values(), default=None)


def record_heartbeat(r: redis.Redis, hostname: str, at: float) -> None:
    pipe = r.pipeline(transaction=False)
    pipe.zadd(keys.WORKERS, {hostname: at})
    pipe.zremrangebyscore(keys.WORKERS, "-inf", at - FORGET_WORKER_SECONDS)
    pipe.execute()


def record_beat_tick(r: redis.Redis, at: float) -> None:
    r.set(keys.BEAT_LAST_TICK, repr(at))


def read_liveness(r: redis.Redis) -> Liveness:
    pipe = r.pipeline(transaction=False)
    pipe.zrange(keys.WORKERS, 0, -1, withscores=True)
    pipe.get(keys.BEAT_LAST_TICK)
    workers, tick = pipe.execute()
    return Liveness({name.decode(): at for name, at in workers}, float(tick) if tick else None)
