"""Liveness (`/`), readiness (`/health`) and Prometheus metrics (`/metrics`)."""

from __future__ import annotations

import time

import redis
from flask import Blueprint, jsonify, redirect, request, url_for

from cache.reader import NoActiveVersion
from web.health import check_health
from web.metrics import exposition
from web.state import cache, limits, optional_database, version_store

bp = Blueprint("status", __name__)
RUNNING = "Recommender System API is running"
HEALTH_PARTS = 3  # Redis, the database, and what is left to answer within the read deadline


@bp.get("/")
def index():
    """Answers even without Redis or a model, saying what the model state is. A browser, which
    asks for HTML first, is sent to the dashboard; API clients keep this JSON."""
    if request.accept_mimetypes.best_match(("application/json", "text/html")) == "text/html":
        return redirect(url_for("dashboard.overview")), {"Vary": "Accept"}
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
    return jsonify(body), {"Vary": "Accept"}  # the same address redirects a browser


@bp.get("/health")
def health():
    """Every dependency's state; 503 when one is down, named in `down` (see web.health)."""
    share = limits().read_seconds / HEALTH_PARTS
    report = check_health(cache(), optional_database(), version_store(), time.time(), share)
    return jsonify(report.body()), 200 if report.ok else 503


@bp.get("/metrics")
def metrics():
    return exposition(cache())
