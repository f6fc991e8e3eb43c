"""Clusters: all summaries, one cluster with its best-ranked movies."""

from __future__ import annotations

from flask import Blueprint, jsonify

from cache.reader import CacheReader
from web.fetch import fetch_or_404
from web.state import cache, stale_answers

bp = Blueprint("clusters", __name__)


@bp.get("/clusters")
def clusters():
    return jsonify(stale_answers().answer(("clusters",), lambda: cache().clusters()))


@bp.get("/clusters/<cluster_id>")
def cluster(cluster_id: str):
    return jsonify(fetch_or_404("cluster", cluster_id, CacheReader.cluster, ranked=True))
