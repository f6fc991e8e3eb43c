"""`movierec db import`: a MovieLens folder into the database through the same readers and cleaning.

Rows are streamed with COPY into temporary tables and merged with upserts that change a row
only when its values differ (a rating only when its rated_at is not older), so importing the
same folder again writes nothing and a newer rating posted over HTTP is never overwritten.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from tqdm import tqdm

from db.migrate import migrate
from db.writes import RATING_IS_NEWER, stamp_changes_sql
from pipeline import io as artifacts_io
from pipeline.artifacts import OutputFolder
from pipeline.data.cleaning import CleanData, clean
from pipeline.data.readers import read_dataset

BATCH_ROWS = 1 << 20


@dataclass(frozen=True)
class Table:
    """How one cleaned frame lands in one table."""

    name: str
    columns: dict[str, str]  # frame column -> table column
    stage_types: str
    key: tuple[str, ...]
    merge_when: str  # the upsert's WHERE: when an existing row takes the new values
    texts: tuple[str, ...] = ()  # an empty CSV field here is '' (a movie without genres)


MOVIES = Table(
    "movies",
    {"movieId": "movie_id", "title": "title", "genres": "genres"},
    "movie_id bigint, title text, genres text",
    ("movie_id",),
    "(movies.title, movies.genres) IS DISTINCT FROM (EXCLUDED.title, EXCLUDED.genres)",
    ("title", "genres"),
)
RATINGS = Table(
    "ratings",
    {"userId": "user_id", "movieId": "movie_id", "rating": "rating", "timestamp": "rated_at"},
    "user_id bigint, movie_id bigint, rating real, rated_at integer",
    ("user_id", "movie_id"),
    RATING_IS_NEWER,
)
TAGS = Table(
    "tags",
    {"userId": "user_id", "movieId": "movie_id", "tag": "tag", "filtered": "filtered"},
    "user_id bigint, movie_id bigint, tag text, filtered text",
    ("user_id", "movie_id", "filtered"),
    "tags.tag IS DISTINCT FROM EXCLUDED.tag",
    ("tag", "filtered"),
)


@dataclass(frozen=True)
class ImportReport:
    """Rows read after cleaning, and rows each table took (new or changed)."""

    read: dict[str, int]
    written: dict[str, int]
    users_changed: int


def import_folder(
    conn: psycopg.Connection, data_dir: Path, out_dir: Path, progress: bool = True
) -> ImportReport:
    """Clean the folder, write the cleaning report, and merge everything in one transaction."""
    data = clean(read_dataset(data_dir))
    artifacts_io.write_json(data.report, OutputFolder(out_dir).cleaning_report)
    return merge(conn, data, progress)


def merge(conn: psycopg.Connection, data: CleanData, progress: bool = True) -> ImportReport:
    migrate(conn)
    frames = [(MOVIES, data.movies), (RATINGS, data.ratings), (TAGS, data.tags)]
    total = sum(len(frame) for _, frame in frames)
    written = {}
    with (
        conn.transaction(),
        tqdm(
            total=total, unit=" rows", unit_scale=True, disable=not progress, desc="import"
        ) as bar,
    ):
        for table, frame in frames:
            _stage(conn, table, frame, bar)
        written["movies"] = _upsert(conn, MOVIES)
        written["ratings"], users_changed = _upsert_ratings(conn)
        written["tags"] = _upsert(conn, TAGS)
        # The next retrain brings the imported users: no live refresh is owed for them.
        conn.execute(
            "UPDATE user_changes SET refreshed_xid = changed_xid"
            " WHERE changed_xid = pg_current_xact_id()"
        )
        conn.execute(
            "SELECT setval('movie_ids', greatest((SELECT max(movie_id) FROM movies),"
            " (SELECT last_value FROM movie_ids)))"
        )
    read = {table.name: len(frame) for table, frame in frames}
    return ImportReport(read, written, users_changed)


def _stage(conn: psycopg.Connection, table: Table, frame: pd.DataFrame, bar: tqdm) -> None:
    conn.execute(f"CREATE TEMP TABLE stage_{table.name} ({table.stage_types}) ON COMMIT DROP")
    columns = ", ".join(table.columns.values())
    not_null = f", FORCE_NOT_NULL ({', '.join(table.texts)})" if table.texts else ""
    command = f"COPY stage_{table.name} ({columns}) FROM STDIN (FORMAT csv{not_null})"
    with conn.cursor().copy(command) as copy:
        for chunk, rows in _csv_chunks(frame[list(table.columns)]):
            copy.write(chunk)
            bar.update(rows)


def _csv_chunks(frame: pd.DataFrame) -> Iterator[tuple[bytes, int]]:
    """CSV without a header, BATCH_ROWS rows at a time (pyarrow writes it, not Python)."""
    options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for batch in table.to_batches(max_chunksize=BATCH_ROWS):
        sink = io.BytesIO()
        pacsv.write_csv(pa.Table.from_batches([batch]), sink, options)
        yield sink.getvalue(), batch.num_rows


def _upsert_sql(table: Table, returning: str = "") -> str:
    columns = ", ".join(table.columns.values())
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in table.columns.values() if c not in table.key)
    return (
        f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM stage_{table.name}"
        f" ON CONFLICT ({', '.join(table.key)}) DO UPDATE SET {updates}, updated_at = now()"
        f" WHERE {table.merge_when}{returning}"
    )


def _upsert(conn: psycopg.Connection, table: Table) -> int:
    return conn.execute(_upsert_sql(table)).rowcount


def _upsert_ratings(conn: psycopg.Connection) -> tuple[int, int]:
    """Ratings written, and users whose ratings changed (stamped in user_changes)."""
    stamp = stamp_changes_sql("SELECT DISTINCT user_id, pg_current_xact_id() FROM written")
    rows, users = conn.execute(
        f"WITH written AS ({_upsert_sql(RATINGS, ' RETURNING user_id')}),"
        f" stamped AS ({stamp})"
        " SELECT count(*), count(DISTINCT user_id) FROM written"
    ).fetchone()
    return int(rows), int(users)
