"""Title search over the active version's movies, for API clients and the dashboard."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from web.errors import ApiError
from web.params import query_int
from web.state import cache, titles
from web.title_index import search_titles

bp = Blueprint("search", __name__)
MAX_QUERY = 200
DEFAULT_HITS, MAX_HITS = 10, 50


def search_movies(query: str, n: int) -> list[dict]:
    return search_titles(titles().titles(cache()), query, n)


@bp.get("/search")
def search():
    query = request.args.get("q", "")
    if not 1 <= len(query) <= MAX_QUERY:
        raise ApiError(400, f"q must be 1 to {MAX_QUERY} characters, got {len(query)}")
    return jsonify(search_movies(query, query_int("n", 1, MAX_HITS, DEFAULT_HITS)))
