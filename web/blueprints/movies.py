"""Movies: details, similar movies from the same cluster, the popular list, adding one, hiding
or changing one."""

from __future__ import annotations

import logging
import math

import redis
from flask import Blueprint, jsonify, request, url_for
from kombu.exceptions import OperationalError

from cache.entries import add_movie, movie_entry
from cache.movie_changes import write_change
from cache.reader import CacheReader
from db import writes
from tasks.celery_app import TASK_PLACE_MOVIE
from web.auth import require_token
from web.bodies import parse_movie, parse_movie_change
from web.errors import ApiError
from web.fetch import fetch_or_404
from web.params import parse_n, parse_stored_id
from web.request_ids import PLAIN
from web.state import cache, celery, database, models, redis_client, stale_answers

bp = Blueprint("movies", __name__)
log = logging.getLogger(__name__)
CHANGE_NOT_COPIED = (
    "the change is stored in the database, but the cache (Redis) did not take it, so lists do "
    "not show it yet: send the same PATCH again"
)
JOINS_LATER = "the movie joins users' lists and similar movies at the next retrain"
# A client's key for one POST /movies (draft-ietf-httpapi-idempotency-key-header): sent again
# with a retry, it finds the movie the first POST added.
IDEMPOTENCY_KEY = "Idempotency-Key"


@bp.get("/movies/<movie_id>")
def movie(movie_id: str):
    """The movie's details, hidden ones too (`hidden` says so): operators need to see them."""
    return jsonify(fetch_or_404("movie", movie_id, CacheReader.movie))


@bp.get("/movie/<movie_id>")
def movie_seed_path(movie_id: str):
    """The same as GET /movies/<id>, for the clients of the first version of the API."""
    return movie(movie_id)


@bp.patch("/movies/<movie_id>")
@require_token
def change_movie(movie_id: str):
    """Hide or show a movie, fix its title or genres. Stored in PostgreSQL, then copied beside
    the versions in Redis, where every list reads it at once; new genres also queue the
    movie's placement in the live version (its cluster and similar movies)."""
    wanted = parse_stored_id(movie_id, "movie")
    change = parse_movie_change(request.get_data())
    with database().connection() as conn:
        state = writes.change_movie(conn, wanted, change.title, change.genres, change.hidden)
    if state is None:
        raise ApiError(404, "Movie not found")
    try:
        write_change(redis_client(), wanted, state.hidden, state.title, state.genres)
        if change.genres is not None:
            celery().send_task(TASK_PLACE_MOVIE, args=[wanted])
    except (redis.RedisError, OperationalError) as error:
        log.warning("movie change not copied to the cache: %s", error)
        raise ApiError(503, CHANGE_NOT_COPIED, outcome="partial") from None
    return jsonify(fetch_or_404("movie", movie_id, CacheReader.movie))


@bp.get("/recommend/movie/<movie_id>")
def recommend_for_movie(movie_id: str):
    """Nearest movies of the same cluster, most similar first (deterministic)."""
    return jsonify(fetch_or_404("movie", movie_id, CacheReader.similar_movies, ranked=True))


@bp.get("/popular")
def popular():
    n = parse_n()
    return jsonify(stale_answers().answer(("popular", n), lambda: cache().popular(n)))


@bp.post("/movies")
@require_token
def create_movie():
    """201 with the new id and the cluster the live version's model places the movie in."""
    title, genres = parse_movie(request.get_data())
    reader = cache()
    active = reader.active()
    cluster = models().cluster_of(active, genres)
    key = request.headers.get(IDEMPOTENCY_KEY)
    if key is not None and not PLAIN.fullmatch(key):
        raise ApiError(400, f"{IDEMPOTENCY_KEY} must be 1 to 64 letters, digits, '.', '_', '-'")
    with database().connection() as conn:
        try:
            movie_id = writes.add_movie(conn, title, genres, key)
        except writes.KeyReused as error:
            raise ApiError(422, str(error)) from None
    score = active.meta.get("global_mean_rating", 0.0)  # a movie without ratings: the prior
    entry = movie_entry(title, genres, cluster, score, 0, math.nan)
    try:
        add_movie(reader.r, active.version, movie_id, entry)
        note = JOINS_LATER
    except redis.RedisError:  # stored all the same: answering 503 would invite a duplicate
        note = f"{JOINS_LATER}; the cache is down, so GET /movie/{movie_id} finds it from then"
    location = url_for("movies.movie", movie_id=movie_id)
    body = {
        "movieId": movie_id,
        "title": title,
        "genres": genres,
        "cluster": cluster,
        "model_version": active.version,
        "note": note,
    }
    return jsonify(body), 201, {"Location": location}
