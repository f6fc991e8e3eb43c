"""Bearer-token check for endpoints that start jobs."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from flask import current_app, request

from web.errors import ApiError

P = ParamSpec("P")
R = TypeVar("R")


def require_token(view: Callable[P, R]) -> Callable[P, R]:
    @wraps(view)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        expected = current_app.config.get("API_TOKEN")
        if not expected:
            raise ApiError(503, "job endpoints are disabled: set MOVIEREC_API_TOKEN")
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), expected.encode()):
            raise ApiError(
                401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"}
            )
        return view(*args, **kwargs)

    return guarded
