"""The app's shared clients, stored on the Flask app by the factory."""

from __future__ import annotations

import redis
from celery import Celery
from flask import current_app

from cache.reader import CacheReader
from cache.settings import Settings
from db.database import Database
from web.errors import ApiError


def cache() -> CacheReader:
    return current_app.extensions["movierec.cache"]


def redis_client() -> redis.Redis:
    return cache().r


def celery() -> Celery:
    return current_app.extensions["movierec.celery"]


def settings() -> Settings:
    return current_app.extensions["movierec.settings"]


NO_DATABASE = "live writes need a database: set MOVIEREC_DATABASE_URL"


def optional_database() -> Database | None:
    """The system of record, or None when none is configured (reads go on without it)."""
    return current_app.extensions["movierec.database"]


def database() -> Database:
    """The system of record; without one the write endpoints answer 503."""
    found = optional_database()
    if found is None:
        raise ApiError(503, NO_DATABASE)
    return found
