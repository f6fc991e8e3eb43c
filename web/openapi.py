"""The OpenAPI 3.1 document of the JSON API, served at /openapi.json, and its Swagger UI at /docs.

The document is kept beside the code it describes; tests/test_openapi.py fails when a route of
the app is missing from it or it names one the app does not have, and schemathesis checks every
response against it. Shapes shared by several operations are defined once, under `components`.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from flask_swagger_ui import get_swaggerui_blueprint

from web.blueprints.jobs import JOB_ID
from web.blueprints.onboarding import DEFAULT_MOVIES as DEFAULT_ONBOARDING
from web.blueprints.onboarding import MAX_MOVIES as MAX_ONBOARDING
from web.blueprints.ratings import OFFSET_MAX, PAGE_DEFAULT, PAGE_MAX
from web.blueprints.search import DEFAULT_HITS, MAX_HITS, MAX_QUERY
from web.bodies import MAX_RATINGS, MAX_TIMESTAMP, MAX_TITLE
from web.params import MAX_STORED_ID as MAX_ID

bp = Blueprint("openapi", __name__)
DOCS_URL = "/docs"
# Routes that are not part of the JSON API: the document itself, its UI, static files, the
# dashboard's HTML pages.
UNDOCUMENTED = ("/openapi.json", DOCS_URL, "/static", "/dashboard")


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def obj(required: list[str], optional: dict[str, Any] | None = None, **fields: Any) -> dict:
    """An object with `fields` (those named in `required` must be present)."""
    properties = fields | (optional or {})
    return {"type": "object", "required": required, "properties": properties}


INTEGER, NUMBER, TEXT = {"type": "integer"}, {"type": "number"}, {"type": "string"}
MOVIE_FIELDS = {
    "movieId": INTEGER,
    "title": nullable(TEXT),
    "genres": nullable(TEXT),
    "cluster": nullable(INTEGER),
    "score": nullable(NUMBER),
    "n_ratings": nullable(INTEGER),
    "avg_rating": nullable(NUMBER),
}

STALE = {
    "stale": {
        "type": "boolean",
        "description": "true: Redis did not answer, and this is the web process's own recent "
        "answer (at most MOVIEREC_STALE_SECONDS old, 30 by default); so is a list answered "
        "with a Cache-Status header",
    }
}
CACHE_STATUS = {
    "Cache-Status": {
        "description": "RFC 9211, only on a stale answer given while Redis did not answer: "
        '`movierec; hit; ttl=-<age in seconds>; detail="redis unavailable"`',
        "schema": TEXT,
    }
}

SCHEMAS: dict[str, Any] = {
    "Error": obj(
        ["error"],
        error=TEXT,
        hint={"type": "string", "description": "what to do about it"},
        item={"type": "integer", "description": "the offending item of a request body"},
        field=nullable(TEXT),
        movie_ids={"type": "array", "items": INTEGER},
        items={"type": "array", "items": INTEGER, "description": "the offending items"},
        job_id=nullable(TEXT),
        status_url=nullable(TEXT),
        outcome={
            "enum": ["unknown"],
            "description": "a write the database did not answer in time may or may not be "
            "stored; sending the same request again is safe",
        },
    ),
    "Movie": obj(list(MOVIE_FIELDS), STALE, **MOVIE_FIELDS),
    "MovieDetail": obj(
        [*MOVIE_FIELDS, "hidden"],
        STALE,
        **MOVIE_FIELDS,
        hidden={"type": "boolean", "description": "withdrawn from every list (PATCH)"},
    ),
    "MovieChange": {
        **obj(
            [],
            title={"type": "string", "minLength": 1, "maxLength": MAX_TITLE},
            genres={"type": "string", "description": "'|'-joined, e.g. Comedy|Drama"},
            hidden={"type": "boolean"},
        ),
        "minProperties": 1,
        "additionalProperties": False,
    },
    "OnboardingMovie": obj(
        [*MOVIE_FIELDS, "cluster_name"], **MOVIE_FIELDS, cluster_name=nullable(TEXT)
    ),
    "SearchHit": obj(
        ["movieId", "title", "genres", "cluster"],
        **{field: MOVIE_FIELDS[field] for field in ("movieId", "title", "genres", "cluster")},
    ),
    "SimilarMovie": obj([*MOVIE_FIELDS, "similarity"], **MOVIE_FIELDS, similarity=NUMBER),
    "RecommendedMovie": obj(
        [*MOVIE_FIELDS, "source", "reason"],
        **MOVIE_FIELDS,
        source={"enum": ["cluster", "popular"]},
        reason={"type": "string", "description": "why the movie is on the list"},
    ),
    "User": obj(
        ["userId", "favorite_cluster", "n_ratings", "cluster_counts"],
        {"cluster_liking": {"type": "object", "additionalProperties": NUMBER}} | STALE,
        userId=INTEGER,
        favorite_cluster=INTEGER,
        favorite_cluster_name=nullable(TEXT),
        favorite_cluster_description=nullable(TEXT),
        n_ratings=INTEGER,
        cluster_counts={"type": "object", "additionalProperties": INTEGER},
    ),
    "ClusterSummary": obj(
        ["cluster", "size", "top_genres", "avg_rating", "n_ratings", "top_movies"],
        {
            "name": {
                "type": "string",
                "description": "short and distinct within a version, from what sets the cluster "
                "apart (genres by lift, decade, tags, how known or liked), kept across retrains "
                'while the cluster keeps its movies: "1990s · Crime & Thriller"',
            },
            "description": {
                "type": "string",
                "description": 'its best-known movies, never hidden ones: "like The Matrix, ..."',
            },
            "descriptors": {"type": "array", "items": TEXT, "description": "the name's parts"},
        },
        cluster=INTEGER,
        size=INTEGER,
        top_genres={"type": "array", "items": obj(["genre", "share"], genre=TEXT, share=NUMBER)},
        avg_rating=nullable(NUMBER),
        n_ratings=INTEGER,
        top_movies={"type": "array", "items": INTEGER},
    ),
    "Cluster": {
        "allOf": [
            ref("ClusterSummary"),
            obj(["movies"], STALE, movies={"type": "array", "items": ref("Movie")}),
        ]
    },
    "Index": obj(
        ["message", "model_version", "trained_at", "counts"],
        {"model_status": TEXT},
        message=TEXT,
        model_version=nullable(TEXT),
        trained_at=nullable(TEXT),
        counts=nullable({"type": "object", "additionalProperties": INTEGER}),
    ),
    "Health": obj(
        ["status", "model_version", "down", "parts"],
        {
            "degraded": {
                "type": "array",
                "items": TEXT,
                "description": "parts that fail or answer late while reads go on (the store; "
                "Redis or the database not answering in time)",
            }
        },
        status={"enum": ["ok", "degraded", "down"]},
        model_version=nullable(TEXT),
        down={"type": "array", "items": TEXT, "description": "the parts that are down or late"},
        parts=obj(
            ["redis", "model", "workers", "beat", "database"],
            **{
                part: {
                    "type": "object",
                    "required": ["status"],
                    "properties": {"status": TEXT},
                }
                for part in ("redis", "model", "workers", "beat", "database")
            },
        ),
    ),
    "Job": obj(
        ["id", "kind", "state", "progress", "result", "error"],
        {"chunks": obj(["done", "total"], done=INTEGER, total=INTEGER)},
        id=TEXT,
        kind=nullable(TEXT),
        state={"enum": ["PENDING", "STARTED", "PROGRESS", "SUCCESS", "FAILURE", "RETRY"]},
        progress=nullable(obj(["stage", "percent"], stage=TEXT, percent=NUMBER)),
        result={},
        error=nullable(TEXT),
    ),
    "JobAccepted": obj(["job_id", "status_url"], job_id=TEXT, status_url=TEXT),
    "RatingInput": {
        **obj(
            ["movieId", "rating"],
            {"timestamp": {"type": "integer", "minimum": 0, "maximum": MAX_TIMESTAMP}},
            movieId={"type": "integer", "minimum": 1, "maximum": MAX_ID},
            rating={"type": "number", "minimum": 0.5, "maximum": 5.0, "multipleOf": 0.5},
        ),
        "additionalProperties": False,
    },
    "RatingsWritten": obj(
        ["userId", "received", "stored", "refresh"],
        userId=INTEGER,
        received=INTEGER,
        stored={"type": "integer", "description": "new or changed ratings"},
        refresh=obj(
            ["state"],
            {"job_id": TEXT, "status_url": TEXT, "reason": TEXT},
            state={"enum": ["queued", "pending", "unchanged"]},
        ),
    ),
    "RatingsPage": obj(
        ["userId", "total", "limit", "offset", "ratings"],
        userId=INTEGER,
        total=INTEGER,
        limit=INTEGER,
        offset=INTEGER,
        ratings={
            "type": "array",
            "items": obj(
                ["movieId", "rating", "timestamp", "title"],
                movieId=INTEGER,
                rating=NUMBER,
                timestamp=INTEGER,
                title=TEXT,
            ),
        },
    ),
    "NewMovieInput": {
        **obj(
            ["title"],
            {"genres": {"type": "string", "description": "'|'-joined, e.g. Comedy|Drama"}},
            title={"type": "string", "minLength": 1, "maxLength": MAX_TITLE},
        ),
        "additionalProperties": False,
    },
    "NewMovie": obj(
        ["movieId", "title", "genres", "cluster", "model_version", "note"],
        movieId=INTEGER,
        title=TEXT,
        genres=TEXT,
        cluster=INTEGER,
        model_version=TEXT,
        note=TEXT,
    ),
}


def json_body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def error(description: str) -> dict[str, Any]:
    return json_body(ref("Error"), description)


def array(name: str) -> dict[str, Any]:
    return {"type": "array", "items": ref(name)}


def path_id(name: str, what: str, low: int = 0) -> dict[str, Any]:
    schema = {"type": "integer", "minimum": low, "maximum": MAX_ID if low else 10**18 - 1}
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": what}


def query_int(name: str, low: int, high: int, description: str) -> dict[str, Any]:
    schema = {"type": "integer", "minimum": low, "maximum": high}
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


N = {
    "name": "n",
    "in": "query",
    "required": False,
    "schema": {"type": "integer", "minimum": 1, "maximum": 50},
    "description": "items to return (default 5); at most the lists' depth: 50 unless the "
    "version was trained with another --depth, and more is a 400",
}
UNAVAILABLE = error("Redis, the job queue or the database is unavailable, or nothing is published")
BAD = error("a malformed id, parameter or body")
GUARDED = {"security": [{"bearer": []}]}
AUTH_ERRORS = {
    "401": error("no or a wrong bearer token"),
    "503": error("the service is unavailable, or no API token is configured"),
}


def read(summary: str, ok: dict[str, Any], *params: dict[str, Any], missing: str = "") -> dict:
    responses = {"200": ok | {"headers": CACHE_STATUS}, "503": UNAVAILABLE}
    if params:
        responses["400"] = BAD
    if missing:
        responses["404"] = error(missing)
    return {"get": {"summary": summary, "parameters": list(params), "responses": responses}}


def document() -> dict[str, Any]:
    user, movie = path_id("user_id", "a user id"), path_id("movie_id", "a movie id")
    stored_user = path_id("user_id", "a user id", low=1)
    stored_movie = path_id("movie_id", "a movie id", low=1)
    cluster = path_id("cluster_id", "a cluster id")
    index = read("Liveness and the live model version", json_body(ref("Index"), "ok"))
    index["get"]["responses"]["302"] = {
        "description": "to /dashboard, for a client that asks for text/html before JSON (a browser)"
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "movierec",
            "version": "1",
            "description": "Movie recommendations from MovieLens, built around clusters of "
            "movies. Reads come from the live model version in the cache; writes go to the "
            "database and refresh the user's list within a second.",
        },
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "paths": {
            "/": index,
            "/health": {
                "get": {
                    "summary": "Readiness of every part the service needs",
                    "responses": {
                        "200": json_body(ref("Health"), "every part is up"),
                        "503": json_body(ref("Health"), "a part is down; the body says which"),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {
                        "200": {
                            "description": "Prometheus text format",
                            "content": {"text/plain": {"schema": TEXT}},
                        },
                        "503": UNAVAILABLE,
                    },
                }
            },
            "/movie/{movie_id}": read(
                "A movie and its cluster (the same as GET /movies/{movie_id})",
                json_body(ref("MovieDetail"), "the movie"),
                movie,
                missing="Movie not found",
            ),
            "/movies/{movie_id}": read(
                "A movie and its cluster, hidden ones too",
                json_body(ref("MovieDetail"), "the movie"),
                movie,
                missing="Movie not found",
            )
            | {
                "patch": {
                    "summary": "Hide or show a movie, or change its title or genres",
                    "description": "Hidden movies leave every list at once (the next ones move "
                    "up) and come back when shown; new genres place the movie in the live "
                    "version's clusters within seconds, and the next retrain trains on them. "
                    "Hide a movie to withdraw it: ratings refer to it, so it is never deleted.",
                    **GUARDED,
                    "parameters": [stored_movie],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": ref("MovieChange")}},
                    },
                    "responses": {
                        "200": json_body(ref("MovieDetail"), "the movie as changed"),
                        "400": BAD,
                        "404": error("Movie not found"),
                        **AUTH_ERRORS,
                    },
                }
            },
            "/recommend/movie/{movie_id}": read(
                "The nearest movies of the same cluster",
                json_body(array("SimilarMovie"), "most similar first"),
                movie,
                N,
                missing="Movie not found",
            ),
            "/recommend/user/{user_id}": read(
                "Unseen movies from the user's best clusters, each with its reason",
                json_body(array("RecommendedMovie"), "best first"),
                user,
                N,
                missing="User not found (a hint says how to get a list)",
            ),
            "/users/{user_id}": read(
                "The user's favorite cluster and liking per cluster",
                json_body(ref("User"), "the user"),
                user,
                missing="User not found",
            )
            | {
                "delete": {
                    "summary": "Erase the user: ratings, tags, cached lists in every version",
                    "description": "A tombstone of the id stays in the database: later writes "
                    "to it answer 410, and no retrain brings the user back. Version files kept "
                    "for rollback hold the user until they are pruned (README, Erasure).",
                    **GUARDED,
                    "parameters": [stored_user],
                    "responses": {
                        "204": {"description": "erased now, or already (a retry is safe)"},
                        "400": BAD,
                        "404": error("User not found: never seen"),
                        **AUTH_ERRORS,
                    },
                }
            },
            "/clusters": read(
                "Every cluster's summary", json_body(array("ClusterSummary"), "by cluster id")
            ),
            "/clusters/{cluster_id}": read(
                "A cluster with its best-ranked movies",
                json_body(ref("Cluster"), "the cluster"),
                cluster,
                N,
                missing="Cluster not found",
            ),
            "/search": read(
                "Movies whose title holds every word of q, case and accents aside",
                json_body(
                    array("SearchHit"),
                    "titles starting with q first, then those holding it, then the rest; "
                    "more rated first within each",
                ),
                {
                    "name": "q",
                    "in": "query",
                    "required": True,
                    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_QUERY},
                    "description": "words of a title; one without a letter or digit finds nothing",
                },
                query_int("n", 1, MAX_HITS, f"results to return (default {DEFAULT_HITS})"),
            ),
            "/onboarding": read(
                "Movies for a new user to rate: from every cluster in turn, well-known and "
                "divisive ones, so that a few answers tell the clusters apart",
                json_body(array("OnboardingMovie"), "in the order to show them"),
                query_int(
                    "n", 1, MAX_ONBOARDING, f"movies to return (default {DEFAULT_ONBOARDING})"
                ),
            ),
            "/popular": read(
                "The most rated movies", json_body(array("Movie"), "most rated first"), N
            ),
            "/jobs/retrain": {
                "post": {
                    "summary": "Start a retrain (one at a time)",
                    **GUARDED,
                    "responses": {
                        "202": json_body(ref("JobAccepted"), "started; follow status_url"),
                        "409": error("a retrain is already running (job_id names it)"),
                        **AUTH_ERRORS,
                    },
                }
            },
            "/jobs/{job_id}": {
                "get": {
                    "summary": "A job's state, progress, result or error",
                    "parameters": [
                        {
                            "name": "job_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "pattern": f"^{JOB_ID.pattern}$"},
                        }
                    ],
                    "responses": {
                        "200": json_body(ref("Job"), "the job"),
                        "404": error("Job not found"),
                        "503": UNAVAILABLE,
                    },
                }
            },
            "/users/{user_id}/refresh": {
                "post": {
                    "summary": "Recompute one user's cached entry now",
                    **GUARDED,
                    "parameters": [user],
                    "responses": {
                        "202": json_body(ref("JobAccepted"), "queued; follow status_url"),
                        "400": BAD,
                        "404": error("User not found"),
                        **AUTH_ERRORS,
                    },
                }
            },
            "/users/{user_id}/ratings": {
                "post": {
                    "summary": "Add or change the user's ratings; their list follows",
                    **GUARDED,
                    "parameters": [stored_user],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "array",
                                    "items": ref("RatingInput"),
                                    "minItems": 1,
                                    "maxItems": MAX_RATINGS,
                                }
                            }
                        },
                    },
                    "responses": {
                        "201": json_body(ref("RatingsWritten"), "committed"),
                        "400": BAD,
                        "410": error("the user was erased: nothing is stored under the id"),
                        "413": error(f"more than {MAX_RATINGS:,} ratings, or a body over 256 KB"),
                        "422": error("an unknown movie; nothing was stored"),
                        **AUTH_ERRORS,
                    },
                },
                "get": {
                    "summary": "The user's ratings, newest first",
                    "parameters": [
                        stored_user,
                        query_int("limit", 1, PAGE_MAX, f"page size (default {PAGE_DEFAULT})"),
                        query_int("offset", 0, OFFSET_MAX, "ratings to skip (default 0)"),
                    ],
                    "responses": {
                        "200": json_body(ref("RatingsPage"), "a page"),
                        "400": BAD,
                        "503": UNAVAILABLE,
                    },
                },
            },
            "/users/{user_id}/ratings/{movie_id}": {
                "delete": {
                    "summary": "Remove one rating; the user's list follows",
                    **GUARDED,
                    "parameters": [stored_user, stored_movie],
                    "responses": {
                        "204": {"description": "removed"},
                        "400": BAD,
                        "404": error("Rating not found"),
                        **AUTH_ERRORS,
                    },
                }
            },
            "/movies": {
                "post": {
                    "summary": "Add a movie; the live model places it in a cluster at once",
                    **GUARDED,
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
                            "description": "the same POST sent again with the same key (after "
                            "a timeout, say) answers the movie the first one added",
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": ref("NewMovieInput")}},
                    },
                    "responses": {
                        "201": json_body(ref("NewMovie"), "stored and served"),
                        "400": BAD,
                        "422": error("the Idempotency-Key already added another movie"),
                        **AUTH_ERRORS,
                    },
                }
            },
        },
    }


@bp.get("/openapi.json")
def openapi():
    return jsonify(document())


docs = get_swaggerui_blueprint(DOCS_URL, "/openapi.json", {"app_name": "movierec API"})
