"""Request bodies of the write endpoints, checked item by item with errors a client can act on.

Every check runs before anything is stored: a request is taken whole or not at all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from db.writes import RatingInput, now_seconds
from pipeline.data.genres import tidy_genres
from web.errors import ApiError
from web.params import MAX_STORED_ID

MAX_RATINGS = 1000
MAX_TIMESTAMP = 2**31 - 1
MAX_TITLE = 500
RATING_FIELDS = {"movieId", "rating", "timestamp"}
MOVIE_FIELDS = {"title", "genres"}
CHANGE_FIELDS = {"title", "genres", "hidden"}


def json_body(raw: bytes) -> Any:
    """The parsed body, every text in it one that PostgreSQL and UTF-8 can hold."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ApiError(400, f"the body is not valid JSON: {error}") from None
    _check_texts(body, [])
    return body


def _check_texts(value: Any, path: list[str | int]) -> None:
    """JSON's escapes can spell a NUL (which PostgreSQL's text refuses) or half of a surrogate
    pair (which no UTF-8 encoder takes): refused here, for every endpoint, naming the field."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_texts(key, path)
            _check_texts(item, [*path, key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_texts(item, [*path, index])
    elif isinstance(value, str):
        problem = "a NUL character" if "\x00" in value else None
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            problem = "an unpaired surrogate (half of a UTF-16 pair)"
        if problem:
            raise _bad_text(path, problem)


def _bad_text(path: list[str | int], problem: str) -> ApiError:
    index = next((part for part in path if isinstance(part, int)), None)
    field = next((part for part in reversed(path) if isinstance(part, str)), None)
    where = " ".join(
        f"item {part}" if isinstance(part, int) else f"field {part!r}" for part in path
    )
    return ApiError(400, f"{where or 'the body'} holds {problem}", item=index, field=field)


def parse_ratings(raw: bytes) -> list[RatingInput]:
    """A JSON array of {"movieId": int, "rating": 0.5..5.0 in half stars, "timestamp": int?}."""
    items = json_body(raw)
    if not isinstance(items, list) or not items:
        raise ApiError(400, "the body must be a non-empty JSON array of ratings")
    if len(items) > MAX_RATINGS:
        raise ApiError(413, f"at most {MAX_RATINGS} ratings per request, got {len(items)}")
    now = now_seconds()
    return [_rating(index, item, now) for index, item in enumerate(items)]


def _rating(index: int, item: Any, now: int) -> RatingInput:
    if not isinstance(item, dict):
        raise _bad(index, None, "must be an object")
    unknown = sorted(set(item) - RATING_FIELDS)
    if unknown:
        raise _bad(index, unknown[0], "is not a field of a rating")
    for name in ("movieId", "rating"):
        if name not in item:
            raise _bad(index, name, "is missing")
    movie_id = _integer(index, "movieId", item["movieId"], 1, MAX_STORED_ID)
    rating = item["rating"]
    if isinstance(rating, bool) or not isinstance(rating, int | float):
        raise _bad(index, "rating", "must be a number")
    if not 0.5 <= rating <= 5.0:
        raise _bad(index, "rating", f"must be from 0.5 to 5.0, got {rating}")
    if rating * 2 != round(rating * 2):
        raise _bad(index, "rating", f"must be in half stars (0.5, 1.0, ... 5.0), got {rating}")
    timestamp = item.get("timestamp")
    rated_at = (
        now if timestamp is None else _integer(index, "timestamp", timestamp, 0, MAX_TIMESTAMP)
    )
    return RatingInput(movie_id, float(rating), rated_at)


def _integer(index: int, name: str, value: Any, low: int, high: int) -> int:
    """An integer as JSON means it: 7 and 7.0 are the same number, 7.5 and "7" are not."""
    whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not whole:
        raise _bad(index, name, f"must be an integer, got {json.dumps(value)[:40]}")
    if not low <= value <= high:
        raise _bad(index, name, f"must be from {low} to {high}, got {value}")
    return int(value)


def _bad(index: int, field: str | None, problem: str) -> ApiError:
    where = f"item {index}" + (f" field {field!r}" if field else "")
    return ApiError(400, f"{where} {problem}", item=index, field=field)


def parse_movie(raw: bytes) -> tuple[str, str]:
    """{"title": non-empty text, "genres": "A|B" (optional)} -> (title, tidy genres)."""
    body = _movie_object(raw, MOVIE_FIELDS, '{"title": ..., "genres": "A|B"}')
    return _title(body.get("title")), _genres(body.get("genres", ""))


@dataclass(frozen=True)
class MovieChange:
    """What a PATCH changes; None leaves a field as it is."""

    title: str | None
    genres: str | None
    hidden: bool | None


def parse_movie_change(raw: bytes) -> MovieChange:
    """Any of {"title": text, "genres": "A|B", "hidden": true|false}, at least one."""
    body = _movie_object(raw, CHANGE_FIELDS, '{"title"?, "genres"?, "hidden"?}')
    if not body:
        raise ApiError(400, "nothing to change: give any of title, genres and hidden")
    hidden = body.get("hidden")
    if "hidden" in body and not isinstance(hidden, bool):
        raise ApiError(400, "field 'hidden' must be true or false", field="hidden")
    return MovieChange(
        _title(body["title"]) if "title" in body else None,
        _genres(body["genres"]) if "genres" in body else None,
        hidden,
    )


def _movie_object(raw: bytes, fields: set[str], shape: str) -> dict:
    body = json_body(raw)
    if not isinstance(body, dict):
        raise ApiError(400, f"the body must be a JSON object {shape}")
    unknown = sorted(set(body) - fields)
    if unknown:
        raise ApiError(400, f"field {unknown[0]!r} is not a field of a movie", field=unknown[0])
    return body


def _title(title: Any) -> str:
    if not isinstance(title, str) or not title.strip():
        raise ApiError(400, "field 'title' must be non-empty text", field="title")
    if len(title) > MAX_TITLE:
        raise ApiError(400, f"field 'title' may have at most {MAX_TITLE} characters", field="title")
    return title.strip()


def _genres(genres: Any) -> str:
    if not isinstance(genres, str):
        raise ApiError(400, "field 'genres' must be text like 'Comedy|Drama'", field="genres")
    return tidy_genres(genres)
