"""Placing movies whose genres changed after the live version was trained: their cluster and
similar movies in that version, kept beside it (cache.movie_changes) until a retrain trains on
the new genres. Idempotent: placing a movie again writes the same place."""

from __future__ import annotations

import redis
from celery.utils.log import get_task_logger

from cache import versions
from cache.movie_changes import read_changes, write_change, write_place
from cache.reader import NoActiveVersion
from cache.redis_client import get_redis
from cache.settings import get_settings
from db.database import DatabaseUnavailable
from db.writes import hidden_movies, movie_features
from pipeline.artifacts import DEFAULT_MODEL_FORMAT, VersionFolder
from pipeline.params import PipelineParams
from store.objects import StoreUnavailable
from tasks.celery_app import TASK_PLACE_MOVIE, celery_app, time_limits
from tasks.database_access import worker_database
from tasks.version_access import version_folder

log = get_task_logger(__name__)
PLACE_FILES = (*VersionFolder.CATALOG, VersionFolder.MODEL_FILES[DEFAULT_MODEL_FORMAT])


@celery_app.task(
    name=TASK_PLACE_MOVIE,
    autoretry_for=(redis.RedisError, StoreUnavailable, DatabaseUnavailable),
    retry_backoff=True,
    max_retries=5,
    **time_limits(get_settings().chunk_time_limit),
)
def place_movie(movie_id: int) -> dict:
    from pipeline.lists.placement import place_movie as place  # pandas: workers only

    r = get_redis()
    version = versions.active_version(r)
    db = worker_database()
    if version is None or db is None:
        raise NoActiveVersion("no live version, or no database: nothing to place the movie in")
    with db.connection() as conn:
        features = movie_features(conn, movie_id)
    if features is None:
        return {"movieId": movie_id, "placed": False}
    genres, tags = features
    folder = version_folder(version, PLACE_FILES)
    depth = PipelineParams.from_metadata(folder.read_metadata()).stored_depth
    found = place(folder, movie_id, genres, tags, depth)
    write_place(r, movie_id, version, found.cluster, found.similar)
    log.info("placed movie %d in cluster %d of %s", movie_id, found.cluster, version)
    return {"movieId": movie_id, "version": version, "cluster": found.cluster}


def carry_changes(version: str) -> int:
    """After `version` went live: copy again the hidden movies the database knows and Redis does
    not (its data was lost, or a change's copy failed), and queue a placement of every movie
    placed in an older version (its new genres may postdate the new version's snapshot);
    returns how many placements were queued."""
    r = get_redis()
    changes = read_changes(r)
    db = worker_database()
    if db is not None:
        with db.connection() as conn:
            hidden = hidden_movies(conn)
        for movie_id, state in hidden.items():
            if movie_id not in changes.hidden:
                write_change(r, movie_id, state.hidden, state.title, state.genres)
    stale = [m for m, place in changes.places.items() if place.version != version]
    for movie_id in stale:
        celery_app.send_task(TASK_PLACE_MOVIE, args=[movie_id])
    return len(stale)
