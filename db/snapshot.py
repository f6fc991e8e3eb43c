"""One consistent snapshot of the database as the pipeline's clean data, read as Arrow.

Everything is read in one REPEATABLE READ transaction, so movies, ratings and tags agree with
each other, and the transaction's `pg_current_snapshot()` is recorded: after a version trained
on it goes live, exactly the users whose changes it did not see are refreshed
(`changed_after`). ADBC streams the rows in PostgreSQL's binary format straight into Arrow.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import adbc_driver_postgresql.dbapi as adbc
import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa

from pipeline.cleaning import CleanData
from pipeline.run import Loaded, Loader, Stages

RATINGS_QUERY = "SELECT user_id, movie_id, rating, rated_at FROM ratings ORDER BY user_id, movie_id"
MOVIES_QUERY = "SELECT movie_id, title, genres FROM movies ORDER BY movie_id"
TAGS_QUERY = "SELECT user_id, movie_id, tag, filtered FROM tags ORDER BY user_id, movie_id"
HIGHEST_UPDATE_QUERY = (
    "SELECT greatest((SELECT max(updated_at) FROM movies), (SELECT max(updated_at) FROM tags),"
    " (SELECT max(changed_at) FROM user_changes))::text"
)


@dataclass(frozen=True)
class SnapshotInfo:
    """What metadata.json records: which state of the database a version was trained on."""

    pg_snapshot: str  # pg_current_snapshot(): decides which later changes it did not see
    counts: dict[str, int]
    highest_updated_at: str | None


def database_loader(url: str) -> Loader:
    def load(stages: Stages) -> Loaded:
        with stages("read"):
            data, info = read_snapshot(url)
        fingerprint = hashlib.sha256(json.dumps(asdict(info), sort_keys=True).encode())
        return Loaded(data, {"database": asdict(info)}, fingerprint.hexdigest(), cleaned_here=False)

    return load


def read_snapshot(url: str) -> tuple[CleanData, SnapshotInfo]:
    with adbc.connect(url, autocommit=True) as conn, conn.cursor() as cursor:
        cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            cursor.execute("SELECT pg_current_snapshot()::text")
            (pg_snapshot,) = cursor.fetchone()
            ratings = _fetch(cursor, RATINGS_QUERY)
            movies = _fetch(cursor, MOVIES_QUERY)
            tags = _fetch(cursor, TAGS_QUERY)
            cursor.execute(HIGHEST_UPDATE_QUERY)
            (highest,) = cursor.fetchone()
        finally:
            cursor.execute("COMMIT")
    data = CleanData(
        ratings=_ratings_frame(ratings),
        movies=_movies_frame(movies),
        tags=_tags_frame(tags),
        report={"layout": "database"},
    )
    counts = {"movies": movies.num_rows, "ratings": ratings.num_rows, "tags": tags.num_rows}
    return data, SnapshotInfo(pg_snapshot, counts, highest)


def _fetch(cursor: adbc.Cursor, query: str) -> pa.Table:
    cursor.execute(query)
    return cursor.fetch_arrow_table()


def _ids(column: pa.ChunkedArray) -> np.ndarray:
    """bigint ids (checked to lie in 1..2^32-1 by the schema) as the pipeline's uint32."""
    return column.to_numpy().astype(np.uint32)


def _ratings_frame(table: pa.Table) -> pd.DataFrame:
    return pd.DataFrame({
        "userId": _ids(table["user_id"]),
        "movieId": _ids(table["movie_id"]),
        "rating": table["rating"].to_numpy().astype(np.float32, copy=False),
        "timestamp": table["rated_at"].to_numpy().astype(np.int32, copy=False),
    })  # fmt: skip


def _movies_frame(table: pa.Table) -> pd.DataFrame:
    return pd.DataFrame({
        "movieId": _ids(table["movie_id"]),
        "title": table["title"].to_pylist(),
        "genres": table["genres"].to_pylist(),
    })  # fmt: skip


def _tags_frame(table: pa.Table) -> pd.DataFrame:
    return pd.DataFrame({
        "userId": _ids(table["user_id"]),
        "movieId": _ids(table["movie_id"]),
        "tag": table["tag"].to_pylist(),
        "filtered": table["filtered"].to_pylist(),
    })  # fmt: skip


def user_ratings(conn: psycopg.Connection, user_id: int) -> tuple[pd.DataFrame, int | None]:
    """One user's ratings in the pipeline's schema, and the change they reflect (the
    `user_changes` xid; None for a user with no recorded change). One statement: one snapshot."""
    change, movies, ratings, times = conn.execute(
        "SELECT (SELECT changed_xid::text FROM user_changes WHERE user_id = %(user)s),"
        " coalesce(array_agg(movie_id ORDER BY movie_id), '{}'),"
        " coalesce(array_agg(rating ORDER BY movie_id), '{}'),"
        " coalesce(array_agg(rated_at ORDER BY movie_id), '{}')"
        " FROM ratings WHERE user_id = %(user)s",
        {"user": user_id},
    ).fetchone()
    frame = pd.DataFrame({
        "userId": np.full(len(movies), user_id, np.uint32),
        "movieId": np.array(movies, np.uint32),
        "rating": np.array(ratings, np.float32),
        "timestamp": np.array(times, np.int32),
    })  # fmt: skip
    return frame, int(change) if change is not None else None
