"""Onboarding: the movies a new user is asked to rate, so that a few answers tell the clusters
apart; the ratings they send back (POST /users/<id>/ratings) give them a first list at once."""

from __future__ import annotations

from flask import Blueprint, jsonify

from web.params import query_int
from web.state import cache, stale_answers

bp = Blueprint("onboarding", __name__)
DEFAULT_MOVIES, MAX_MOVIES = 10, 50


@bp.get("/onboarding")
def onboarding():
    n = query_int("n", 1, MAX_MOVIES, DEFAULT_MOVIES)
    return jsonify(stale_answers().answer(("onboarding", n), lambda: cache().onboarding(n)))
