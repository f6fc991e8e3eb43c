"""Thin Flask API over the Redis cache: serves precomputed results and starts jobs.

It never loads ratings or pandas, so a process starts in well under a second.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from flask import Flask

from cache.reader import CacheReader
from cache.redis_client import WEB, redis_from_url
from cache.settings import get_settings, get_store
from db.database import Database
from resilience.breaker import CircuitBreaker
from web import dashboard, openapi, state
from web.blueprints import clusters, jobs, movies, onboarding, ratings, search, status, users
from web.dashboard.charts import MapCache
from web.errors import register_error_handlers
from web.job_queue import job_queue
from web.json_body import OrjsonProvider
from web.limits import RequestDeadlines, ServingLimits
from web.metrics import count_stale_answer, install_request_metrics, record_breaker_event
from web.new_movies import ModelCache
from web.stale import StaleAnswers, add_cache_status
from web.title_index import TitleIndex

MAX_BODY_BYTES = 256 * 1024  # 1,000 ratings take about 60 KB


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app; `config` may override API_TOKEN, REDIS (a client), CELERY, DATABASE
    (a db.database.Database), STORE (a store.versions.VersionStore), LIMITS (a
    web.limits.ServingLimits)."""
    settings = get_settings()
    app = Flask(__name__)
    app.config.update(
        API_TOKEN=settings.api_token,
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
    )
    app.config.update(config or {})
    app.json = OrjsonProvider(app)
    app.json.sort_keys = False

    limits = app.config.get("LIMITS") or ServingLimits.from_env()
    breakers = state.Breakers(*(_breaker(name, limits) for name in state.Breakers._fields))
    redis_profile = replace(WEB, breaker=breakers.redis)
    r = app.config.get("REDIS") or redis_from_url(settings.broker_url, redis_profile)
    app.extensions[state.CACHE] = CacheReader(r)
    app.extensions[state.CELERY] = app.config.get("CELERY") or job_queue(settings, redis_profile)
    app.extensions[state.SETTINGS] = settings
    app.extensions[state.LIMITS] = limits
    app.extensions[state.BREAKERS] = breakers
    app.extensions[state.DATABASE] = app.config.get("DATABASE") or _database(
        settings.database_url, limits, breakers.database
    )
    app.extensions[state.STALE] = StaleAnswers(
        limits.stale_seconds, limits.stale_entries, count_stale_answer
    )
    app.extensions[state.TITLES] = TitleIndex()
    store = app.extensions[state.STORE] = app.config.get("STORE") or get_store()
    app.extensions[state.MODELS] = ModelCache(store)
    app.extensions[state.MAPS] = MapCache()

    install_request_metrics(app)
    resources = (status, movies, users, ratings, clusters, jobs, search, onboarding)
    for resource in resources:
        app.register_blueprint(resource.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(openapi.docs)
    register_error_handlers(app)
    app.after_request(add_cache_status)
    app.wsgi_app = RequestDeadlines(app.wsgi_app, limits)  # type: ignore[method-assign]
    return app


def _breaker(dependency: str, limits: ServingLimits) -> CircuitBreaker:
    """A probe takes a request's deadline at most: no second probe starts while one waits."""
    return CircuitBreaker(
        dependency,
        limits.breaker_open_seconds,
        record_breaker_event,
        probe_seconds=limits.write_seconds,
    )


def _database(url: str | None, limits: ServingLimits, breaker: CircuitBreaker) -> Database | None:
    """The server cancels what runs past the write deadline (a lock held by an import); the
    client abandons what a frozen server never answers (db.database)."""
    if url is None:
        return None
    timeout = limits.write_seconds
    return Database(url, statement_timeout=timeout, slots=limits.database_slots, breaker=breaker)
