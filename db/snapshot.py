"""One consistent snapshot of the database as the pipeline's clean data, read as Arrow.

Everything is read in one REPEATABLE READ transaction, so movies, ratings and tags agree with
each other, and the transaction's `pg_current_snapshot()` is recorded: after a version trained
on it goes live, exactly the users whose changes it did not see are refreshed
(`changed_after`). ADBC streams the rows in PostgreSQL's binary format straight into Arrow.

Ratings are most of the data and few of them change between two retrains, so a retrain given
the previous version reads only the ratings of users changed since that version's snapshot
(every write stamps `user_changes` in its own transaction) and takes everyone else's from the
version's `ratings.parquet`, which holds exactly what that snapshot saw. The merged frame is the
one a full read would give, row for row.
"""

from __future__ import annotations

import hashlib
import json
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import NamedTuple

import adbc_driver_postgresql.dbapi as adbc
import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq

from db.changes import changed_users_sql
from db.erasure import ERASED_IDS_QUERY
from pipeline.artifacts import VersionFolder
from pipeline.data.cleaning import CleanData
from pipeline.data.readers import RATING_COLUMNS, RATING_DTYPES
from pipeline.run import Loaded, Loader, Stages

RATINGS_QUERY = "SELECT user_id, movie_id, rating, rated_at FROM ratings ORDER BY user_id, movie_id"
MOVIES_QUERY = "SELECT movie_id, title, genres FROM movies ORDER BY movie_id"
TAGS_QUERY = "SELECT user_id, movie_id, tag, filtered FROM tags ORDER BY user_id, movie_id"
HIGHEST_UPDATE_QUERY = (
    "SELECT greatest((SELECT max(updated_at) FROM movies), (SELECT max(updated_at) FROM tags),"
    " (SELECT max(changed_at) FROM user_changes))::text"
)
# Transaction ids count per cluster, and a database recreated under the same name is another
# database: a snapshot only means something to the cluster and the database it was taken in.
DATABASE_ID_QUERY = (
    "SELECT (SELECT system_identifier FROM pg_control_system())::text || '/'"
    " || (SELECT oid FROM pg_database WHERE datname = current_database())::text"
)
CHANGED_USERS_QUERY = changed_users_sql("$1")
# The users as an array, not a join: the planner would merge-join the whole ratings index.
CHANGED_RATINGS_QUERY = (
    "SELECT user_id, movie_id, rating, rated_at FROM ratings"
    " WHERE user_id = ANY($1::bigint[]) ORDER BY user_id, movie_id"
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reused:
    """How much of a snapshot came from an earlier version instead of the database."""

    version: str
    users_read: int  # users changed since that version's snapshot: read from the database
    ratings_read: int


@dataclass(frozen=True)
class SnapshotInfo:
    """What metadata.json records: which state of the database a version was trained on."""

    pg_snapshot: str  # pg_current_snapshot(): decides which later changes it did not see
    database_id: str  # the cluster and database pg_snapshot belongs to
    counts: dict[str, int]
    highest_updated_at: str | None
    reused: Reused | None = None  # None: every rating was read from the database


class Snapshot(NamedTuple):
    data: CleanData
    info: SnapshotInfo


class BaseRatings(NamedTuple):
    """An earlier version's ratings and the snapshot they are exactly."""

    version: str
    path: str
    pg_snapshot: str


class RatingsRead(NamedTuple):
    frame: pd.DataFrame
    reused: Reused | None


def database_loader(url: str, base: VersionFolder | None = None) -> Loader:
    """`base`: a version trained on this database earlier, whose ratings may be reused."""

    def load(stages: Stages) -> Loaded:
        with stages("read"):
            data, info = read_snapshot(url, base)
        source = asdict(info)
        fingerprint = hashlib.sha256(json.dumps(_without_reuse(source), sort_keys=True).encode())
        return Loaded(data, {"database": source}, fingerprint.hexdigest(), cleaned_here=False)

    return load


def _without_reuse(source: dict) -> dict:
    """The same database state has one fingerprint, however its ratings were read."""
    return {key: value for key, value in source.items() if key != "reused"}


def read_snapshot(url: str, base: VersionFolder | None = None) -> Snapshot:
    with (
        ThreadPoolExecutor(max_workers=1) as disk,
        adbc.connect(url, autocommit=True) as conn,
        conn.cursor() as cursor,
    ):
        cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            pg_snapshot = _value(cursor, "SELECT pg_current_snapshot()::text")
            database_id = _value(cursor, DATABASE_ID_QUERY)
            reusable = base_ratings(base, database_id)
            # The reused ratings load from disk while the database answers what follows.
            kept = disk.submit(_read_kept, reusable) if reusable else None
            movies = _fetch(cursor, MOVIES_QUERY)
            tags = _fetch(cursor, TAGS_QUERY)
            highest = _value(cursor, HIGHEST_UPDATE_QUERY)
            ratings = _read_ratings(cursor, reusable, kept)
        finally:
            cursor.execute("COMMIT")
    data = CleanData(
        ratings=ratings.frame,
        movies=_movies_frame(movies),
        tags=_tags_frame(tags),
        report={"layout": "database"},
    )
    counts = {"movies": movies.num_rows, "ratings": len(ratings.frame), "tags": tags.num_rows}
    return Snapshot(data, SnapshotInfo(pg_snapshot, database_id, counts, highest, ratings.reused))


def base_ratings(base: VersionFolder | None, database_id: str) -> BaseRatings | None:
    """The version's ratings if it was trained on a snapshot of this very database."""
    if base is None or not base.metadata.is_file() or not base.ratings.is_file():
        return None
    recorded = base.read_metadata().get("database") or {}
    if recorded.get("database_id") != database_id or not recorded.get("pg_snapshot"):
        return None
    return BaseRatings(base.version, str(base.ratings), recorded["pg_snapshot"])


def _read_kept(base: BaseRatings) -> pa.Table:
    return pq.read_table(base.path, columns=list(RATING_COLUMNS))


def _read_ratings(
    cursor: adbc.Cursor, base: BaseRatings | None, kept: Future[pa.Table] | None
) -> RatingsRead:
    if base is not None and kept is not None:
        try:
            return _read_changed_ratings(cursor, base, kept)
        except (OSError, pa.ArrowException, ValueError) as error:
            log.warning("ratings of version %s not reusable (%s): reading all", base.version, error)
    return RatingsRead(_ratings_table(_fetch(cursor, RATINGS_QUERY)).to_pandas(), None)


def _read_changed_ratings(
    cursor: adbc.Cursor, base: BaseRatings, kept: Future[pa.Table]
) -> RatingsRead:
    changed = _ids(_fetch(cursor, CHANGED_USERS_QUERY, base.pg_snapshot)["user_id"])
    listed = "{" + ",".join(map(str, changed.tolist())) + "}"
    fresh = _ratings_table(_fetch(cursor, CHANGED_RATINGS_QUERY, listed))
    # An erased user has no stamp left to be seen as changed: the tombstones take them out.
    erased = _ids(_fetch(cursor, ERASED_IDS_QUERY)["user_id"])
    frame = merge_users(kept.result(), np.union1d(changed, erased), fresh).to_pandas()
    reused = Reused(base.version, users_read=len(changed), ratings_read=fresh.num_rows)
    return RatingsRead(frame, reused)


def merge_users(kept: pa.Table, replaced: np.ndarray, fresh: pa.Table) -> pa.Table:
    """`kept` (sorted by user) with each `replaced` user's rows swapped for that user's rows in
    `fresh` (sorted by user, none of another user), possibly none: slices of the two tables
    joined in order, so nothing is sorted or copied until the caller converts the result."""
    users = kept["userId"].to_numpy()
    if users.size and np.any(users[1:] < users[:-1]):
        raise ValueError("the ratings are not sorted by user")
    gone, came = _runs(users, replaced), _runs(fresh["userId"].to_numpy(), replaced)
    pieces, done = [], 0
    for start, stop, new_start, new_stop in zip(*gone, *came, strict=True):
        pieces += [kept.slice(done, start - done), fresh.slice(new_start, new_stop - new_start)]
        done = stop
    pieces.append(kept.slice(done))
    return pa.concat_tables([piece for piece in pieces if piece.num_rows] or [kept.slice(0, 0)])


class Runs(NamedTuple):
    start: np.ndarray
    stop: np.ndarray


def _runs(users: np.ndarray, wanted: np.ndarray) -> Runs:
    """Where each wanted user's rows lie in `users` (sorted): [start, stop), empty if none."""
    return Runs(np.searchsorted(users, wanted, "left"), np.searchsorted(users, wanted, "right"))


def _value(cursor: adbc.Cursor, query: str) -> str | None:
    cursor.execute(query)
    return cursor.fetchone()[0]


def _fetch(cursor: adbc.Cursor, query: str, *parameters: str) -> pa.Table:
    cursor.execute(query, parameters or None)
    return cursor.fetch_arrow_table()


def _ids(column: pa.ChunkedArray) -> np.ndarray:
    """bigint ids (checked to lie in 1..2^32-1 by the schema) as the pipeline's uint32."""
    return column.to_numpy().astype(np.uint32)


def _ratings_table(table: pa.Table) -> pa.Table:
    """The pipeline's names and types (bigint ids checked to lie in 1..2^32-1 by the schema)."""
    stored = zip(RATING_COLUMNS, ("user_id", "movie_id", "rating", "rated_at"), strict=True)
    return pa.table({
        name: table[column].cast(pa.from_numpy_dtype(RATING_DTYPES[name]))
        for name, column in stored
    })


def _movies_frame(table: pa.Table) -> pd.DataFrame:
    return pd.DataFrame({
        "movieId": _ids(table["movie_id"]),
        "title": table["title"].to_pandas(),
        "genres": table["genres"].to_pandas(),
    })  # fmt: skip


def _tags_frame(table: pa.Table) -> pd.DataFrame:
    return pd.DataFrame({
        "userId": _ids(table["user_id"]),
        "movieId": _ids(table["movie_id"]),
        "tag": table["tag"].to_pandas(),
        "filtered": table["filtered"].to_pandas(),
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
