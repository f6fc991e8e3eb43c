"""Thin Flask API over the Redis cache: serves precomputed results and starts jobs.

It never loads ratings or pandas, so a process starts in well under a second.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from cache.reader import CacheReader
from cache.redis_client import WEB, redis_from_url
from cache.settings import get_settings, get_store
from db.database import database
from tasks.celery_app import celery_app
from web import dashboard, openapi, state
from web.blueprints import clusters, jobs, movies, ratings, search, status, users
from web.dashboard.charts import MapCache
from web.errors import register_error_handlers
from web.json_body import OrjsonProvider
from web.metrics import install_request_metrics
from web.new_movies import ModelCache

MAX_BODY_BYTES = 256 * 1024  # 1,000 ratings take about 60 KB
# A request waits no longer on PostgreSQL (a lock held by an import, a stuck server): the web
# tier's few threads also serve the cached reads, which must not queue behind it. Past it: 503.
STATEMENT_TIMEOUT_SECONDS = 5.0


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app; `config` may override API_TOKEN, REDIS (a client), CELERY, DATABASE
    (a db.database.Database), STORE (a store.versions.VersionStore)."""
    settings = get_settings()
    app = Flask(__name__)
    app.config.update(
        API_TOKEN=settings.api_token,
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
    )
    app.config.update(config or {})
    app.json = OrjsonProvider(app)
    app.json.sort_keys = False

    r = app.config.get("REDIS") or redis_from_url(settings.broker_url, WEB)
    app.extensions[state.CACHE] = CacheReader(r)
    app.extensions[state.CELERY] = app.config.get("CELERY") or celery_app
    app.extensions[state.SETTINGS] = settings
    url = settings.database_url
    app.extensions[state.DATABASE] = app.config.get("DATABASE") or (
        url and database(url, statement_timeout=STATEMENT_TIMEOUT_SECONDS)
    )
    app.extensions[state.TITLES] = search.TitleIndex()
    store = app.extensions[state.STORE] = app.config.get("STORE") or get_store()
    app.extensions[state.MODELS] = ModelCache(store)
    app.extensions[state.MAPS] = MapCache()

    install_request_metrics(app)
    for blueprint in (status.bp, movies.bp, users.bp, ratings.bp, clusters.bp, jobs.bp, search.bp):
        app.register_blueprint(blueprint)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(openapi.docs)
    register_error_handlers(app)
    return app
