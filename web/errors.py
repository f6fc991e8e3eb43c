"""Every error leaves as JSON with the right status; clients never see HTML or a traceback."""

from __future__ import annotations

import logging

import redis
from flask import Flask, Response, jsonify, request
from kombu.exceptions import OperationalError
from werkzeug.exceptions import HTTPException

from cache.reader import LengthTooLong, NoActiveVersion
from db.database import DatabaseBusy, DatabaseTimeout, DatabaseUnavailable
from db.erasure import UserErased
from web.limits import READS

log = logging.getLogger(__name__)
OUTCOME_UNKNOWN = (
    "the database did not answer in time: whether the write was stored is unknown; sending the "
    "same request again is safe (for POST /movies, with the same Idempotency-Key header)"
)
DATABASE_DOWN = "the database is unavailable; nothing was stored; try again shortly"
RETRY_SOON = {"Retry-After": "1"}  # a breaker probes again within a second (web.limits)
HOW_TO_PUBLISH = (
    "train and publish a model: `movierec up` does it on first start; otherwise run "
    "`movierec pipeline` then `movierec publish`, or POST /jobs/retrain"
)


class ApiError(Exception):
    """An expected failure with its status and a message meant for the client."""

    def __init__(
        self, status: int, message: str, headers: dict[str, str] | None = None, **extra: object
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.extra = extra


def error_response(status: int, message: str, **extra: object) -> tuple[Response, int]:
    return jsonify({"error": message, **extra}), status


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_exception)
    app.register_error_handler(NoActiveVersion, _no_active_version)
    app.register_error_handler(LengthTooLong, _length_too_long)
    app.register_error_handler(redis.RedisError, _cache_unavailable)
    app.register_error_handler(DatabaseUnavailable, _database_unavailable)
    app.register_error_handler(UserErased, _user_erased)
    app.register_error_handler(OperationalError, _queue_unavailable)
    app.register_error_handler(Exception, _unexpected)


def _api_error(error: ApiError) -> tuple[Response, int, dict[str, str]]:
    return (*error_response(error.status, error.message, **error.extra), error.headers)


def _http_exception(error: HTTPException) -> Response:
    """Keep werkzeug's status and headers (e.g. Allow on 405), replace the HTML body."""
    response = error.get_response()
    response.set_data(jsonify({"error": error.name}).get_data())
    response.content_type = "application/json"
    return response


def _no_active_version(error: NoActiveVersion) -> tuple[Response, int]:
    return error_response(503, str(error), hint=HOW_TO_PUBLISH)


def _length_too_long(error: LengthTooLong) -> tuple[Response, int]:
    return error_response(400, str(error))


def _cache_unavailable(error: redis.RedisError) -> tuple[Response, int, dict[str, str]]:
    log.warning("cache error: %s", error)
    return (*error_response(503, "the cache (Redis) is unavailable; try again shortly"), RETRY_SOON)


def _database_unavailable(error: DatabaseUnavailable) -> tuple[Response, int, dict[str, str]]:
    log.warning("database error: %s", error)
    if isinstance(error, DatabaseTimeout) and error.sent and request.method not in READS:
        body = error_response(503, OUTCOME_UNKNOWN, outcome="unknown")
    elif isinstance(error, DatabaseBusy | DatabaseTimeout):
        body = error_response(503, f"{error}; nothing was stored; try again shortly")
    else:
        body = error_response(503, DATABASE_DOWN)
    return (*body, RETRY_SOON)


def _user_erased(error: UserErased) -> tuple[Response, int]:
    return error_response(410, str(error))


def _queue_unavailable(error: OperationalError) -> tuple[Response, int]:
    log.warning("broker error: %s", error)
    return error_response(503, "the job queue (Redis) is unavailable; try again shortly")


def _unexpected(error: Exception) -> tuple[Response, int]:
    log.exception("unhandled error", exc_info=error)
    return error_response(500, "internal server error")
