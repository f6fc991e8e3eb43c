"""The database against a real PostgreSQL server: schema, import, snapshot and the write path."""

from __future__ import annotations

import signal
import threading

import pandas as pd
import psycopg
import pytest

from db import changes, writes
from db.erasure import Erasure, UserErased, erase_user
from db.importer import import_folder
from db.migrate import migrate, migration_files
from db.snapshot import read_snapshot, user_ratings
from db.writes import RatingInput, UnknownMovies
from pipeline import io as artifacts_io
from pipeline.artifacts import VersionFolder
from pipeline.data.cleaning import clean
from pipeline.data.readers import read_dataset
from service.embedded_postgres import running_postgres, start_postgres

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def url(tmp_path_factory) -> str:
    with running_postgres(tmp_path_factory.mktemp("pg")) as found:
        yield found


@pytest.fixture(scope="module")
def imported(url, small_data, tmp_path_factory):
    """The synthetic folder imported once; returns the first import's report."""
    with psycopg.connect(url, autocommit=True) as conn:
        return import_folder(conn, small_data, tmp_path_factory.mktemp("out"), progress=False)


@pytest.fixture(scope="module")
def movie(small_movies) -> list[int]:
    """The catalogue's first three movie ids (the first has an accented title)."""
    return [int(movie_id) for movie_id in small_movies["movieId"][:3]]


@pytest.fixture
def conn(url, imported):
    with psycopg.connect(url, autocommit=True) as connection:
        yield connection


def test_migrations_apply_once_even_when_processes_start_together(url):
    applied: list[list[int]] = []

    def start() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            applied.append(migrate(conn))

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    numbers = [number for number, _ in migration_files()]
    assert sorted(n for run in applied for n in run) == numbers  # each exactly once


def test_import_then_import_again_changes_nothing(imported, url, small_data, small_shape, tmp_path):
    counts = {
        "movies": small_shape.movies,
        "ratings": small_shape.ratings,
        "tags": small_shape.tags,
    }
    assert imported.read == counts
    assert imported.written == imported.read and imported.users_changed == small_shape.users
    with psycopg.connect(url, autocommit=True) as conn:
        before = conn.execute("SELECT max(updated_at) FROM ratings").fetchone()
        again = import_folder(conn, small_data, tmp_path, progress=False)
        after = conn.execute("SELECT max(updated_at) FROM ratings").fetchone()
    assert again.written == {"movies": 0, "ratings": 0, "tags": 0} and again.users_changed == 0
    assert before == after
    assert (tmp_path / "cleaning_report.json").is_file()  # the same report as the pipeline's


def test_the_snapshot_is_the_cleaned_folder(url, imported, small_data, small_shape):
    data, info = read_snapshot(url)
    folder = clean(read_dataset(small_data))
    pd.testing.assert_frame_equal(data.ratings, folder.ratings)
    pd.testing.assert_frame_equal(data.movies, folder.movies)
    assert len(data.tags) == len(folder.tags)
    counts = {
        "movies": small_shape.movies,
        "ratings": small_shape.ratings,
        "tags": small_shape.tags,
    }
    assert info.counts == counts
    assert info.highest_updated_at and info.pg_snapshot


def _trained_on(snapshot, folder: VersionFolder, **database) -> VersionFolder:
    """A version folder as a retrain leaves it, as far as the next snapshot read looks."""
    folder.path.mkdir(parents=True)
    folder.write_ratings(snapshot.data.ratings)
    recorded = {"pg_snapshot": snapshot.info.pg_snapshot, "database_id": snapshot.info.database_id}
    artifacts_io.write_json({"database": recorded | database}, folder.metadata)
    return folder


def test_a_snapshot_reads_only_users_changed_since_the_base_version(
    url, conn, tmp_path, movie, small_ratings
):
    one, two, three = movie
    writes.store_ratings(conn, 900020, [RatingInput(one, 3.0, 5)])  # removed after the base
    base = _trained_on(read_snapshot(url), VersionFolder(tmp_path / "v1"))
    writes.store_ratings(conn, 1, [RatingInput(one, 0.5, 2**30), RatingInput(two, 5.0, 2**30)])
    writes.store_ratings(conn, 900021, [RatingInput(three, 4.5, 7), RatingInput(one, 2.0, 7)])
    seen_by_two = int(small_ratings.loc[small_ratings["userId"] == 2, "movieId"].iloc[0])
    assert writes.delete_rating(conn, 2, seen_by_two) and writes.delete_rating(conn, 900020, one)

    full = read_snapshot(url)
    reused = read_snapshot(url, base)

    pd.testing.assert_frame_equal(reused.data.ratings, full.data.ratings)
    assert full.info.reused is None
    changed = full.data.ratings["userId"].isin([1, 2, 900021]).sum()  # 900020 has none left
    assert (reused.info.reused.users_read, reused.info.reused.ratings_read) == (4, changed)
    assert reused.info.counts == full.info.counts
    assert 900020 not in set(reused.data.ratings["userId"])


def test_ratings_of_another_database_or_unreadable_are_read_again(url, imported, tmp_path):
    snapshot = read_snapshot(url)
    other = _trained_on(snapshot, VersionFolder(tmp_path / "v1"), database_id="1/1")
    assert read_snapshot(url, other).info.reused is None
    broken = _trained_on(snapshot, VersionFolder(tmp_path / "v2"))
    broken.ratings.write_bytes(b"not parquet")
    again = read_snapshot(url, broken)
    assert again.info.reused is None
    pd.testing.assert_frame_equal(again.data.ratings, snapshot.data.ratings)


def test_the_schema_refuses_what_cleaning_drops(conn, movie):
    known, unknown = movie[0], 424242
    bad_rows = [(1, known, 4.3, 0), (1, known, 5.5, 0), (1, unknown, 4.0, 0), (0, known, 4.0, 0)]
    for row in bad_rows:
        with pytest.raises(psycopg.IntegrityError), conn.transaction():
            conn.execute(
                "INSERT INTO ratings (user_id, movie_id, rating, rated_at) VALUES (%s,%s,%s,%s)",
                row,
            )


def test_the_latest_rating_wins(conn, movie, small_movies):
    user, (one, two, _) = 900001, movie
    stored = writes.store_ratings(
        conn,
        user,
        [RatingInput(one, 2.0, 100), RatingInput(two, 3.0, 100), RatingInput(one, 4.0, 200)],
    )
    assert stored == writes.StoredRatings(received=3, written=2)  # item 2 replaced item 0
    older = writes.store_ratings(conn, user, [RatingInput(one, 0.5, 150)])
    assert older.written == 0
    page = writes.ratings_page(conn, user, 10, 0)
    assert [(row.movie_id, row.rating) for row in page.rows] == [(one, 4.0), (two, 3.0)]
    assert page.rows[0].title == small_movies["title"][0]  # accented, read back unchanged
    assert not page.rows[0].title.isascii()


def test_a_write_with_an_unknown_movie_stores_nothing(conn, movie):
    user, known = 900002, movie[0]
    with pytest.raises(UnknownMovies) as refused:
        writes.store_ratings(conn, user, [RatingInput(known, 4.0, 1), RatingInput(424242, 3.0, 1)])
    assert refused.value.movie_ids == [424242]
    assert writes.ratings_page(conn, user, 10, 0).total == 0


def test_changes_after_a_snapshot_are_found_and_settled(url, conn, movie):
    _, info = read_snapshot(url)
    assert changes.changed_after(conn, info.pg_snapshot) == []
    writes.store_ratings(conn, 900003, [RatingInput(movie[0], 4.0, 1)])
    deleted = writes.delete_rating(conn, 900003, movie[0])
    assert deleted and not writes.delete_rating(conn, 900003, movie[0])
    assert changes.changed_after(conn, info.pg_snapshot) == [900003]
    ratings, change = user_ratings(conn, 900003)
    assert ratings.empty and change is not None
    assert 900003 in changes.pending(conn, 0, 100)
    changes.mark_refreshed(conn, 900003, change)
    assert 900003 not in changes.pending(conn, 0, 100)
    _, later = read_snapshot(url)
    changes.settle(conn, later.pg_snapshot)
    assert changes.changed_after(conn, later.pg_snapshot) == []


def test_imported_users_owe_no_live_refresh(conn):
    assert all(user >= 900000 for user in changes.pending(conn, 0, 1000))


def test_a_new_movie_takes_the_next_free_id(conn, small_movies):
    first = writes.add_movie(conn, "Brand New (2026)", "Comedy")
    assert first > small_movies["movieId"].max()  # above every imported id
    assert writes.add_movie(conn, "Newer (2026)", "") == first + 1


def test_acknowledged_ratings_survive_a_killed_server(tmp_path):
    """SIGKILL of PostgreSQL right after the commits: every acknowledged rating is there after
    a restart on the same folder."""
    server = start_postgres(tmp_path)
    with psycopg.connect(server.url, autocommit=True) as conn:
        migrate(conn)
        assert not writes.has_movies(conn)  # what `up` imports into on a first start
        conn.execute("INSERT INTO movies (movie_id, title) VALUES (1, 'One (2000)')")
        for user in range(1, 201):
            writes.store_ratings(conn, user, [RatingInput(1, 4.5, user)])
    server.process.send_signal(signal.SIGKILL)
    server.process.wait()
    restarted = start_postgres(tmp_path)
    try:
        with psycopg.connect(restarted.url) as conn:
            assert conn.execute("SELECT count(*) FROM ratings").fetchone()[0] == 200
    finally:
        restarted.process.send_signal(signal.SIGINT)
        restarted.process.wait(30)


def test_an_erased_user_leaves_no_row_but_the_tombstone_and_no_snapshot(url, conn, tmp_path, movie):
    one, two, _ = movie
    user = 900030
    writes.store_ratings(conn, user, [RatingInput(one, 4.0, 9), RatingInput(two, 2.5, 9)])
    conn.execute("INSERT INTO tags (user_id, movie_id, tag, filtered) VALUES (%s, %s, 'x', 'x')",
                 (user, one))  # fmt: skip
    base = _trained_on(read_snapshot(url), VersionFolder(tmp_path / "v1"))  # holds the user
    assert erase_user(conn, user) is Erasure.ERASED
    assert erase_user(conn, user) is Erasure.ALREADY
    assert erase_user(conn, 900031) is Erasure.UNKNOWN  # never seen: no tombstone either
    for table in ("ratings", "tags", "user_changes"):
        found = conn.execute(f"SELECT count(*) FROM {table} WHERE user_id = %s", (user,))
        assert found.fetchone() == (0,), table
    rows = conn.execute("SELECT * FROM erased_users WHERE user_id IN (%s, %s)", (user, 900031))
    assert [row[0] for row in rows.fetchall()] == [user]  # the id and the time, nothing else
    reused = read_snapshot(url, base)  # the base version's ratings hold the user: dropped
    assert reused.info.reused is not None
    assert user not in set(reused.data.ratings["userId"])
    pd.testing.assert_frame_equal(reused.data.ratings, read_snapshot(url).data.ratings)
    with pytest.raises(UserErased):
        writes.store_ratings(conn, user, [RatingInput(one, 4.0, 10)])
