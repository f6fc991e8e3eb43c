"""Errors on the dashboard's pages are pages too; the JSON API keeps its JSON errors, because
these handlers are the blueprint's own and Flask tries them first only for its views."""

from __future__ import annotations

import logging

import redis
from flask import Blueprint, render_template
from werkzeug.exceptions import HTTPException

from cache.reader import NoActiveVersion
from web.errors import HOW_TO_PUBLISH

log = logging.getLogger(__name__)


def register_page_errors(bp: Blueprint) -> None:
    bp.register_error_handler(NoActiveVersion, _no_active_version)
    bp.register_error_handler(redis.RedisError, _cache_unavailable)
    bp.register_error_handler(HTTPException, _http_exception)
    bp.register_error_handler(Exception, _unexpected)


def error_page(status: int, title: str, message: str, hint: str = "") -> tuple[str, int]:
    page = render_template(
        "dashboard/error.html", status=status, title=title, message=message, hint=hint
    )
    return page, status


def _no_active_version(error: NoActiveVersion) -> tuple[str, int]:
    return error_page(503, "Nothing is published yet", str(error), HOW_TO_PUBLISH)


def _cache_unavailable(error: redis.RedisError) -> tuple[str, int]:
    log.warning("cache error: %s", error)
    return error_page(503, "The cache is unavailable", "Redis does not answer; try again shortly.")


def _http_exception(error: HTTPException) -> tuple[str, int]:
    return error_page(error.code or 500, error.name, error.description or "")


def _unexpected(error: Exception) -> tuple[str, int]:
    log.exception("unhandled error", exc_info=error)
    return error_page(500, "Something went wrong", "The error is in the server's log.")
