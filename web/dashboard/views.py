"""The dashboard's pages, each rendered on the server from the active version in the cache."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from markupsafe import Markup

from cache.reader import CacheReader
from db import writes
from db.database import DatabaseUnavailable
from web.blueprints.search import MAX_QUERY, search_movies
from web.blueprints.users import NO_LIST_YET
from web.dashboard.charts import Bar, MapDrawing, bar_chart, cluster_color, cluster_map
from web.dashboard.errors import error_page, register_page_errors
from web.dashboard.evaluation import read_evaluation
from web.dashboard.recent_jobs import recent_jobs
from web.params import MAX_STORED_ID
from web.state import (
    NO_DATABASE,
    cache,
    celery,
    cluster_maps,
    optional_database,
    settings,
    version_store,
)

bp = Blueprint(
    "dashboard",
    __name__,
    url_prefix="/dashboard",
    template_folder="templates",
    static_folder="static",
)
register_page_errors(bp)
# How many items each page lists (never more than the version's lists hold).
PREVIEW_MOVIES = 5  # best movies per cluster on the clusters page
CLUSTER_MOVIES = 20
SIMILAR = 10
RECOMMENDED = 10
HISTORY = 20
SEARCH_HITS = 50
# This site's own files only; style attributes carry the cluster colours.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; style-src-attr 'unsafe-inline'; frame-ancestors 'none'"
)


@bp.after_request
def _policy(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response


@bp.context_processor
def _helpers() -> dict:
    return {"colors": cluster_color, "utc": _utc}


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


@bp.get("/")
def overview():
    reader = cache()
    model = reader.active()
    summaries = reader.clusters(model)
    drawn = cluster_maps().get(model.version, lambda: _draw_map(reader))
    sizes = [
        Bar(_cluster_label(s), s["size"], f"{s['size']:,}", cluster_color(s["cluster"]), _url(s))
        for s in summaries
    ]
    return render_template(
        "dashboard/overview.html",
        model=model,
        summaries=summaries,
        sizes=bar_chart(sizes, "Movies per cluster"),
        cluster_map=drawn.svg,
        points=drawn.points,
        evaluation=read_evaluation(version_store(), settings().output.evaluation.name),
        jobs=recent_jobs(celery(), reader.r),
    )


@bp.get("/clusters")
def clusters():
    reader = cache()
    model = reader.active()
    shown = min(PREVIEW_MOVIES, model.depth)
    found = [reader.cluster(s["cluster"], shown) for s in reader.clusters(model)]
    return render_template(
        "dashboard/clusters.html",
        model=model,
        clusters=[(c, _genre_chart(c)) for c in found if c is not None],
    )


@bp.get("/clusters/<int:cluster_id>")
def cluster(cluster_id: int):
    reader = cache()
    model = reader.active()
    found = reader.cluster(cluster_id, min(CLUSTER_MOVIES, model.depth))
    if found is None:
        abort(404, f"The live version has no cluster {cluster_id}.")
    return render_template(
        "dashboard/cluster.html",
        model=model,
        cluster=found,
        genres=_genre_chart(found),
        color=cluster_color(cluster_id),
    )


@bp.get("/movies/<int:movie_id>")
def movie(movie_id: int):
    reader = cache()
    model = reader.active()
    found = reader.movie(movie_id)
    if found is None:
        abort(404, f"The live version has no movie {movie_id}.")
    return render_template(
        "dashboard/movie.html",
        model=model,
        movie=found,
        cluster=_summary(reader.clusters(model), found["cluster"]),
        similar=reader.similar_movies(movie_id, min(SIMILAR, model.depth)) or [],
    )


@bp.get("/users")
def find_user():
    """The header's user box, so a user's page is reachable without JavaScript."""
    wanted = request.args.get("id", "").strip()
    if not wanted.isdecimal():
        abort(400, "A user id is a whole number, such as 1.")
    return redirect(url_for(".user", user_id=int(wanted)))


@bp.get("/users/<int:user_id>")
def user(user_id: int):
    reader = cache()
    model = reader.active()
    shown = min(RECOMMENDED, model.depth)
    found = reader.user_page(user_id, shown) if 1 <= user_id <= MAX_STORED_ID else None
    if found is None:
        message = f"The live version has no list for user {user_id}."
        return error_page(404, "User not found", message, NO_LIST_YET)
    summaries = reader.clusters(model)
    history, history_note = _history(user_id)
    return render_template(
        "dashboard/user.html",
        model=model,
        user=found.user,
        liking=_liking_chart(found.user, summaries),
        favorite=_summary(summaries, found.user["favorite_cluster"]),
        recommendations=found.recommendations,
        history=history,
        history_note=history_note,
    )


@bp.get("/search")
def search():
    query = request.args.get("q", "").strip()
    if len(query) > MAX_QUERY:
        abort(400, f"A search is at most {MAX_QUERY} characters.")
    hits = search_movies(query, SEARCH_HITS) if query else []
    return render_template(
        "dashboard/search.html",
        model=cache().active(),
        query=query,
        hits=hits,
        limit=SEARCH_HITS,
    )


@bp.get("/<path:unknown>")
def unknown(unknown: str):
    """A mistyped dashboard address gets a page too, not the API's JSON 404."""
    abort(404, "The dashboard has no such page.")


def _draw_map(reader: CacheReader) -> MapDrawing:
    found = reader.cluster_map()
    svg = cluster_map(found.points, _cluster_url) if found.points else None
    return MapDrawing(found.version, svg, len(found.points))


def _cluster_label(summary: dict) -> str:
    """The id and the name: "3 · 1990s · Crime & Thriller"; the two leading genres for a
    version trained before clusters had names."""
    genres = ", ".join(g["genre"] for g in summary["top_genres"][:2])
    return f"{summary['cluster']} · {summary.get('name') or genres or 'no genre'}"


def _cluster_url(cluster_id: int) -> str:
    return url_for(".cluster", cluster_id=cluster_id)


def _url(summary: dict) -> str:
    return _cluster_url(summary["cluster"])


def _summary(summaries: list[dict], cluster_id: int | None) -> dict | None:
    return next((s for s in summaries if s["cluster"] == cluster_id), None)


def _genre_chart(summary: dict) -> Markup:
    color = cluster_color(summary["cluster"])
    bars = [Bar(g["genre"], g["share"], f"{g['share']:.0%}", color) for g in summary["top_genres"]]
    return bar_chart(bars, f"Leading genres of cluster {summary['cluster']}")


def _liking_chart(user: dict, summaries: list[dict]) -> Markup:
    """How much the user likes each cluster: the recommender's weights when the version has
    them, else how many of the cluster's movies they rated."""
    liking = user.get("cluster_liking")
    weights, shown = (liking, "{:,.1f}") if liking else (user["cluster_counts"], "{:,}")
    bars = []
    for s in summaries:
        weight = weights.get(str(s["cluster"]), 0)
        color = cluster_color(s["cluster"])
        bars.append(Bar(_cluster_label(s), weight, shown.format(weight), color, _url(s)))
    return bar_chart(bars, f"How much user {user['userId']} likes each cluster")


def _history(user_id: int) -> tuple[writes.RatingsPage | None, str]:
    """The newest ratings from the database, or why there are none to show."""
    db = optional_database()
    if db is None:
        return None, NO_DATABASE
    try:
        with db.connection() as conn:
            return writes.ratings_page(conn, user_id, HISTORY, 0), ""
    except DatabaseUnavailable:
        return None, "The database is unavailable; try again shortly."
