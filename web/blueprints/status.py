"""Liveness (`/`) and readiness (`/health`)."""

from __future__ import annotations

import redis
from flask import Blueprint, jsonify

from cache.reader import NoActiveVersion
from web.state import cache

bp = Blueprint("status", __name__)
RUNNING = "Recommender System API is running"


@bp.get("/")
def index():
    """Answers even without Redis or a model, saying what the model state is."""
    body = {"message": RUNNING, "model_version": None, "trained_at": None, "counts": None}
    try:
        model = cache().active()
    except NoActiveVersion as missing:
        body["model_status"] = str(missing)
    except redis.RedisError:
        body["model_status"] = "the cache (Redis) is unavailable"
    else:
        body.update(
            model_version=model.version,
            trained_at=model.meta.get("trained_at"),
            counts=model.meta.get("counts"),
        )
    return jsonify(body)


@bp.get("/health")
def health():
    """200 only when Redis answers and a version is active; errors map to 503 JSON."""
    reader = cache()
    reader.ping()
    model = reader.active()
    return jsonify({"status": "ok", "model_version": model.version})
