"""A user's ratings: add or change (then their list is refreshed), list, delete."""

from __future__ import annotations

import logging

import redis
from flask import Blueprint, jsonify, request, url_for
from kombu.exceptions import OperationalError

from db import writes
from tasks.jobs import submit_refresh_user
from web.auth import require_token
from web.bodies import parse_ratings
from web.errors import ApiError
from web.params import parse_stored_id, query_int
from web.state import celery, database, redis_client

bp = Blueprint("ratings", __name__)
log = logging.getLogger(__name__)
PAGE_DEFAULT, PAGE_MAX = 50, 500
OFFSET_MAX = 2**31 - 1  # a PostgreSQL integer
REFRESH_PENDING = (
    "the job queue (Redis) is unavailable: the ratings are stored, and the list is refreshed "
    "once it is back, or at the next retrain at the latest"
)


@bp.post("/users/<user_id>/ratings")
@require_token
def add_ratings(user_id: str):
    """201 once the ratings are committed; the user's cached list is refreshed in the background."""
    user = parse_stored_id(user_id, "user")
    items = parse_ratings(request.get_data())
    with database().connection() as conn:
        try:
            stored = writes.store_ratings(conn, user, items)
        except writes.UnknownMovies as error:
            unknown = set(error.movie_ids)
            at = [index for index, item in enumerate(items) if item.movie_id in unknown]
            raise ApiError(
                422, f"{error}: nothing was stored", movie_ids=error.movie_ids, items=at
            ) from None
    body = {"userId": user, "received": stored.received, "stored": stored.written}
    body["refresh"] = _refresh(user) if stored.written else {"state": "unchanged"}
    return jsonify(body), 201


def _refresh(user: int) -> dict:
    """The refresh job, or why it is pending: a write is never refused once committed."""
    try:
        job_id = submit_refresh_user(celery(), redis_client(), user)
    except (redis.RedisError, OperationalError) as error:
        log.warning("refresh of user %d pending: %s", user, error)
        return {"state": "pending", "reason": REFRESH_PENDING}
    return {"state": "queued", "job_id": job_id, "status_url": url_for("jobs.job", job_id=job_id)}


@bp.get("/users/<user_id>/ratings")
def list_ratings(user_id: str):
    """Newest first, `limit` (1-500, default 50) from `offset`."""
    user = parse_stored_id(user_id, "user")
    limit = query_int("limit", 1, PAGE_MAX, PAGE_DEFAULT)
    offset = query_int("offset", 0, OFFSET_MAX, 0)
    with database().connection() as conn:
        page = writes.ratings_page(conn, user, limit, offset)
    ratings = [
        {
            "movieId": row.movie_id,
            "rating": row.rating,
            "timestamp": row.rated_at,
            "title": row.title,
        }
        for row in page.rows
    ]
    return jsonify(
        {"userId": user, "total": page.total, "limit": limit, "offset": offset, "ratings": ratings}
    )


@bp.delete("/users/<user_id>/ratings/<movie_id>")
@require_token
def delete_rating(user_id: str, movie_id: str):
    user = parse_stored_id(user_id, "user")
    movie = parse_stored_id(movie_id, "movie")
    with database().connection() as conn:
        if not writes.delete_rating(conn, user, movie):
            raise ApiError(404, "Rating not found")
    _refresh(user)
    return "", 204
