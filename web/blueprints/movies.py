"""Movies: details, similar movies from the same cluster, the popular list."""

from __future__ import annotations

from flask import Blueprint, jsonify

from cache.reader import CacheReader
from web.fetch import fetch_or_404
from web.params import parse_n
from web.state import cache

bp = Blueprint("movies", __name__)


@bp.get("/movie/<movie_id>")
def movie(movie_id: str):
    return jsonify(fetch_or_404("movie", movie_id, CacheReader.movie))


@bp.get("/recommend/movie/<movie_id>")
def recommend_for_movie(movie_id: str):
    """Nearest movies of the same cluster, most similar first (deterministic)."""
    return jsonify(fetch_or_404("movie", movie_id, CacheReader.similar_movies, ranked=True))


@bp.get("/popular")
def popular():
    reader = cache()
    return jsonify(reader.popular(parse_n(reader.active().depth)))
