"""Users: favorite cluster, cached recommendations, on-demand refresh, erasure."""

from __future__ import annotations

import logging

import redis
from flask import Blueprint, jsonify, url_for

from cache.erasure import forget_user
from cache.reader import CacheReader
from db.erasure import Erasure, erase_user
from tasks.jobs import submit_refresh_user
from web.auth import require_token
from web.errors import ApiError
from web.fetch import fetch_or_404
from web.params import parse_stored_id
from web.request_ids import HEADER, request_id
from web.state import celery, database, redis_client

bp = Blueprint("users", __name__)
log = logging.getLogger(__name__)
CACHE_NOT_CLEARED = (
    "the user is erased from the database, but the cache (Redis) did not answer and still holds "
    "their list: send the same DELETE again"
)
NO_LIST_YET = (
    "a user has a list once they have rated movies: POST /users/<id>/ratings adds ratings "
    "(the list follows within a second), or the next retrain brings users of the data set"
)


@bp.get("/users/<user_id>")
def user(user_id: str):
    return jsonify(fetch_or_404("user", user_id, CacheReader.user, hint=NO_LIST_YET))


@bp.get("/recommend/user/<user_id>")
def recommend_for_user(user_id: str):
    """Unseen movies from the user's best clusters, best first, each with its reason; popular
    ones when those clusters run out."""
    return jsonify(
        fetch_or_404(
            "user", user_id, CacheReader.user_recommendations, ranked=True, hint=NO_LIST_YET
        )
    )


@bp.delete("/users/<user_id>")
@require_token
def erase(user_id: str):
    """The right to erasure: the user's ratings, tags and cached entries in every version go; a
    tombstone of the id stays in the database. 204 again for a user already erased (a retry
    finishes a cleanup of the cache that a failure cut short); 404 for an id never seen."""
    user = parse_stored_id(user_id, "user")
    with database().connection() as conn:
        done = erase_user(conn, user)
    if done is Erasure.UNKNOWN:
        raise ApiError(404, "User not found")
    try:
        forget_user(redis_client(), user)
    except redis.RedisError as error:
        log.warning("erasure %s: the cache could not be cleared: %s", request_id(), error)
        raise ApiError(503, CACHE_NOT_CLEARED, outcome="partial") from None
    log.info("erasure %s: %s", request_id(), done.value)  # no user id: that is personal data
    return "", 204, {HEADER: request_id()}


@bp.post("/users/<user_id>/refresh")
@require_token
def refresh(user_id: str):
    found = fetch_or_404("user", user_id, CacheReader.user)
    job_id = submit_refresh_user(celery(), redis_client(), found["userId"])
    status_url = url_for("jobs.job", job_id=job_id)
    return jsonify({"job_id": job_id, "status_url": status_url}), 202, {"Location": status_url}
