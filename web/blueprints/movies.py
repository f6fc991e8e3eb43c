"""Movies: details, similar movies from the same cluster, the popular list, adding one."""

from __future__ import annotations

import math

import redis
from flask import Blueprint, jsonify, request, url_for

from cache.entries import add_movie, movie_entry
from cache.reader import CacheReader
from db import writes
from web.auth import require_token
from web.bodies import parse_movie
from web.fetch import fetch_or_404
from web.params import parse_n
from web.state import cache, database, models, stale_answers

bp = Blueprint("movies", __name__)
JOINS_LATER = "the movie joins users' lists and similar movies at the next retrain"


@bp.get("/movie/<movie_id>")
def movie(movie_id: str):
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
    with database().connection() as conn:
        movie_id = writes.add_movie(conn, title, genres)
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
