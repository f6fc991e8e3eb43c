"""One Redis connection pool per URL and purpose, shared by everything in a process."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from cache.settings import get_settings


@dataclass(frozen=True)
class ClientProfile:
    timeout: float
    retries: int


# Serving answers fast or fails fast (a 503 beats a hung request); workers write large
# pipelines and can wait out a busy or restarting server.
WEB = ClientProfile(timeout=2.0, retries=1)
WORKER = ClientProfile(timeout=60.0, retries=3)


@cache
def redis_from_url(url: str, profile: ClientProfile = WORKER) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        socket_timeout=profile.timeout,
        socket_connect_timeout=min(profile.timeout, 5.0),
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), profile.retries),
        health_check_interval=30,
    )


def get_redis(profile: ClientProfile = WORKER) -> redis.Redis:
    return redis_from_url(get_settings().broker_url, profile)
