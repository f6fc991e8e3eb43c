"""Validation of path ids and the `n` query parameter, with messages a client can act on."""

from __future__ import annotations

import re

from flask import request

from web.errors import ApiError

MAX_STORED_ID = 2**32 - 1
_ID = re.compile(r"[0-9]{1,18}")


def parse_id(raw: str, what: str) -> int:
    if not _ID.fullmatch(raw):
        raise ApiError(400, f"{what} id must be a non-negative integer, got {raw[:40]!r}")
    return int(raw)


def parse_stored_id(raw: str, what: str) -> int:
    """An id the database can hold: 1 to 2^32 - 1, as MovieLens ids are."""
    value = parse_id(raw, what)
    if not 1 <= value <= MAX_STORED_ID:
        raise ApiError(400, f"{what} id must be from 1 to {MAX_STORED_ID}, got {value}")
    return value


def parse_n() -> int | None:
    """`n`, or None for the reader's default; the reader refuses more than its lists hold."""
    raw = request.args.get("n")
    if raw is None:
        return None
    if not _ID.fullmatch(raw) or int(raw) < 1:
        raise ApiError(400, f"n must be a positive integer, got {raw[:40]!r}")
    return int(raw)


def query_int(name: str, low: int, high: int, default: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not _ID.fullmatch(raw) or not low <= int(raw) <= high:
        raise ApiError(400, f"{name} must be an integer from {low} to {high}, got {raw[:40]!r}")
    return int(raw)
