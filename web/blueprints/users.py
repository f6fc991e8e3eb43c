"""Users: favorite cluster, cached recommendations, on-demand refresh."""

from __future__ import annotations

from flask import Blueprint, jsonify, url_for

from cache.reader import CacheReader
from tasks.jobs import submit_refresh_user
from web.auth import require_token
from web.fetch import fetch_or_404
from web.state import celery, redis_client

bp = Blueprint("users", __name__)
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


@bp.post("/users/<user_id>/refresh")
@require_token
def refresh(user_id: str):
    found = fetch_or_404("user", user_id, CacheReader.user)
    job_id = submit_refresh_user(celery(), redis_client(), found["userId"])
    status_url = url_for("jobs.job", job_id=job_id)
    return jsonify({"job_id": job_id, "status_url": status_url}), 202, {"Location": status_url}
