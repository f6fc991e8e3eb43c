"""Live writes: a user's ratings and new movies, each request one transaction (all or nothing).

Every change to a user's ratings also stamps `user_changes` in the same transaction, which is
how refreshes and retrains know whose cached list is behind the database.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

from db.erasure import refuse_if_erased
from pipeline.errors import MovierecError


class UnknownMovies(MovierecError):
    """Ratings name movies the database does not have; nothing was stored."""

    def __init__(self, movie_ids: list[int]) -> None:
        self.movie_ids = movie_ids
        super().__init__(f"unknown movieId {', '.join(map(str, movie_ids))}")


@dataclass(frozen=True)
class RatingInput:
    movie_id: int
    rating: float
    rated_at: int  # seconds since the epoch, as in MovieLens


@dataclass(frozen=True)
class StoredRatings:
    received: int
    written: int  # new or changed rows; an older or identical rating changes nothing


@dataclass(frozen=True)
class RatingRow:
    movie_id: int
    rating: float
    rated_at: int
    title: str


@dataclass(frozen=True)
class RatingsPage:
    total: int
    rows: list[RatingRow]


# An existing rating takes the new values when they are no older and differ (the latest wins).
RATING_IS_NEWER = (
    "EXCLUDED.rated_at >= ratings.rated_at"
    " AND (ratings.rating, ratings.rated_at) IS DISTINCT FROM (EXCLUDED.rating, EXCLUDED.rated_at)"
)
_UPSERT_RATINGS = f"""
INSERT INTO ratings (user_id, movie_id, rating, rated_at)
SELECT %(user)s, movie_id, rating, rated_at
FROM unnest(%(movies)s::bigint[], %(ratings)s::real[], %(times)s::integer[])
     AS given (movie_id, rating, rated_at)
ON CONFLICT (user_id, movie_id) DO UPDATE
SET rating = EXCLUDED.rating, rated_at = EXCLUDED.rated_at, updated_at = now()
WHERE {RATING_IS_NEWER}
"""


def stamp_changes_sql(users: str) -> str:
    """Record the current transaction as the latest change of each user `users` yields
    (a VALUES list or a SELECT of user ids)."""
    return (
        f"INSERT INTO user_changes (user_id, changed_xid) {users}"
        " ON CONFLICT (user_id) DO UPDATE"
        " SET changed_xid = EXCLUDED.changed_xid, changed_at = now()"
    )


_MARK_CHANGED = stamp_changes_sql("VALUES (%s, pg_current_xact_id())")


def now_seconds() -> int:
    return int(time.time())


def store_ratings(
    conn: psycopg.Connection, user_id: int, items: Sequence[RatingInput]
) -> StoredRatings:
    """Upsert the user's ratings; a later item for the same movie replaces an earlier one."""
    latest = {item.movie_id: item for item in items}
    with conn.transaction():
        refuse_if_erased(conn, user_id)
        missing = unknown_movies(conn, list(latest))
        if missing:
            raise UnknownMovies(missing)
        cursor = conn.execute(
            _UPSERT_RATINGS,
            {
                "user": user_id,
                "movies": list(latest),
                "ratings": [item.rating for item in latest.values()],
                "times": [item.rated_at for item in latest.values()],
            },
        )
        written = cursor.rowcount
        if written:
            conn.execute(_MARK_CHANGED, (user_id,))
    return StoredRatings(received=len(items), written=written)


def delete_rating(conn: psycopg.Connection, user_id: int, movie_id: int) -> bool:
    """False when the user had not rated the movie."""
    with conn.transaction():
        cursor = conn.execute(
            "DELETE FROM ratings WHERE user_id = %s AND movie_id = %s", (user_id, movie_id)
        )
        if cursor.rowcount:
            conn.execute(_MARK_CHANGED, (user_id,))
    return bool(cursor.rowcount)


def ratings_page(conn: psycopg.Connection, user_id: int, limit: int, offset: int) -> RatingsPage:
    """The user's ratings, newest first (ties by movie id)."""
    total = conn.execute("SELECT count(*) FROM ratings WHERE user_id = %s", (user_id,)).fetchone()
    rows = conn.execute(
        "SELECT r.movie_id, r.rating, r.rated_at, m.title FROM ratings r"
        " JOIN movies m USING (movie_id) WHERE r.user_id = %s"
        " ORDER BY r.rated_at DESC, r.movie_id LIMIT %s OFFSET %s",
        (user_id, limit, offset),
    ).fetchall()
    return RatingsPage(total[0], [RatingRow(int(m), float(r), int(t), s) for m, r, t, s in rows])


def unknown_movies(conn: psycopg.Connection, movie_ids: list[int]) -> list[int]:
    known = conn.execute(
        "SELECT movie_id FROM movies WHERE movie_id = ANY(%s::bigint[])", (movie_ids,)
    ).fetchall()
    found = {row[0] for row in known}
    return sorted(m for m in set(movie_ids) if m not in found)


def has_movies(conn: psycopg.Connection) -> bool:
    """False for a database nothing was imported into yet."""
    return bool(conn.execute("SELECT EXISTS (SELECT 1 FROM movies)").fetchone()[0])


class KeyReused(MovierecError):
    """An Idempotency-Key already added another movie."""


def add_movie(
    conn: psycopg.Connection, title: str, genres: str, request_key: str | None = None
) -> int:
    """A new movie with the next free id; with a `request_key` the client sent before for the
    same movie, that movie (a retry adds nothing), for another one KeyReused."""
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO movies (title, genres, request_key) VALUES (%s, %s, %s)"
            " ON CONFLICT (request_key) DO NOTHING RETURNING movie_id",
            (title, genres, request_key),
        ).fetchone()
        if row is not None:
            return int(row[0])
        found = conn.execute(
            "SELECT movie_id, title, genres FROM movies WHERE request_key = %s", (request_key,)
        ).fetchone()
    if (found[1], found[2]) != (title, genres):
        raise KeyReused(f"Idempotency-Key {request_key!r} already added movie {found[0]}")
    return int(found[0])


@dataclass(frozen=True)
class MovieState:
    """A movie's operator-editable fields, as the readers' copy in Redis holds them."""

    title: str
    genres: str
    hidden: bool


def change_movie(
    conn: psycopg.Connection,
    movie_id: int,
    title: str | None = None,
    genres: str | None = None,
    hidden: bool | None = None,
) -> MovieState | None:
    """Set what is given (None leaves a field as it is); the movie as it is now, or None for an
    unknown movie."""
    with conn.transaction():
        row = conn.execute(
            "UPDATE movies SET title = coalesce(%s, title), genres = coalesce(%s, genres),"
            " hidden = coalesce(%s, hidden), updated_at = now() WHERE movie_id = %s"
            " RETURNING title, genres, hidden",
            (title, genres, hidden, movie_id),
        ).fetchone()
    return None if row is None else MovieState(row[0], row[1], bool(row[2]))


def movie_features(conn: psycopg.Connection, movie_id: int) -> tuple[str, str] | None:
    """The movie's genres and filtered tags (space-joined, as the features take them), for
    placing it; None for an unknown movie."""
    return conn.execute(
        "SELECT m.genres, coalesce((SELECT string_agg(t.filtered, ' ' ORDER BY t.user_id,"
        " t.filtered) FROM tags t WHERE t.movie_id = m.movie_id), '')"
        " FROM movies m WHERE m.movie_id = %s",
        (movie_id,),
    ).fetchone()


def hidden_movies(conn: psycopg.Connection) -> dict[int, MovieState]:
    """Every hidden movie as it is now."""
    rows = conn.execute("SELECT movie_id, title, genres FROM movies WHERE hidden").fetchall()
    return {int(m): MovieState(title, genres, True) for m, title, genres in rows}
