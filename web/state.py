"""The app's shared clients and per-process helpers, stored on the Flask app by the factory."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import redis
from celery import Celery
from flask import current_app

from cache.reader import CacheReader
from cache.settings import Settings
from db.database import Database
from resilience.breaker import CircuitBreaker
from store.versions import VersionStore
from web.errors import ApiError
from web.limits import ServingLimits
from web.new_movies import ModelCache
from web.stale import StaleAnswers
from web.title_index import TitleIndex

if TYPE_CHECKING:  # for the annotation only: importing the module imports this one
    from web.dashboard.charts import MapCache

# The keys in `app.extensions`: the factory sets each, the functions below read it.
CACHE = "movierec.cache"
CELERY = "movierec.celery"
SETTINGS = "movierec.settings"
DATABASE = "movierec.database"
TITLES = "movierec.titles"
MODELS = "movierec.models"
MAPS = "movierec.maps"
STORE = "movierec.store"
LIMITS = "movierec.limits"
BREAKERS = "movierec.breakers"
STALE = "movierec.stale"


class Breakers(NamedTuple):
    redis: CircuitBreaker
    database: CircuitBreaker


def cache() -> CacheReader:
    return current_app.extensions[CACHE]


def redis_client() -> redis.Redis:
    return cache().r


def celery() -> Celery:
    return current_app.extensions[CELERY]


def settings() -> Settings:
    return current_app.extensions[SETTINGS]


def version_store() -> VersionStore:
    return current_app.extensions[STORE]


def limits() -> ServingLimits:
    return current_app.extensions[LIMITS]


def breakers() -> Breakers:
    return current_app.extensions[BREAKERS]


def stale_answers() -> StaleAnswers:
    return current_app.extensions[STALE]


def titles() -> TitleIndex:
    return current_app.extensions[TITLES]


def models() -> ModelCache:
    return current_app.extensions[MODELS]


def cluster_maps() -> MapCache:
    return current_app.extensions[MAPS]


NO_DATABASE = "live writes need a database: set MOVIEREC_DATABASE_URL"


def optional_database() -> Database | None:
    """The system of record, or None when none is configured (reads go on without it)."""
    return current_app.extensions[DATABASE]


def database() -> Database:
    """The system of record; without one the write endpoints answer 503."""
    found = optional_database()
    if found is None:
        raise ApiError(503, NO_DATABASE)
    return found
