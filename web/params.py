"""Validation of path ids and the `n` query parameter, with messages a client can act on."""

from __future__ import annotations

import re

from flask import request

from web.errors import ApiError

DEFAULT_N = 5
_ID = re.compile(r"[0-9]{1,18}")


def parse_id(raw: str, what: str) -> int:
    if not _ID.fullmatch(raw):
        raise ApiError(400, f"{what} id must be a non-negative integer, got {raw[:40]!r}")
    return int(raw)


def parse_n(max_n: int) -> int:
    """`n` defaults to 5 and may not exceed the depth of the cached lists."""
    raw = request.args.get("n")
    if raw is None:
        return min(DEFAULT_N, max_n)
    if not _ID.fullmatch(raw) or not 1 <= int(raw) <= max_n:
        raise ApiError(400, f"n must be an integer from 1 to {max_n}, got {raw[:40]!r}")
    return int(raw)
