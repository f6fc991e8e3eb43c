"""One Redis connection pool per URL and purpose, shared by everything in a process."""

from __future__ import annotations

from functools import cache

import redis

from tasks.settings import get_settings

# Serving answers fast or fails fast (a 503 beats a hung request); workers write large
# pipelines and can wait longer for a busy server.
WEB_TIMEOUT = 2.0
WORKER_TIMEOUT = 60.0


@cache
def redis_from_url(url: str, timeout: float = WORKER_TIMEOUT) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=min(timeout, 5.0),
        health_check_interval=30,
    )


def get_redis(timeout: float = WORKER_TIMEOUT) -> redis.Redis:
    return redis_from_url(get_settings().broker_url, timeout)
