"""Merging a version's ratings with the rows of the users changed since: the same rows, in the
same order, as a full read would give."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from db.snapshot import merge_users


def ratings(*rows: tuple[int, int, float]) -> pa.Table:
    users, movies, values = zip(*rows, strict=True) if rows else ((), (), ())
    return pa.table({
        "userId": pa.array(users, pa.uint32()),
        "movieId": pa.array(movies, pa.uint32()),
        "rating": pa.array(values, pa.float32()),
        "timestamp": pa.array([0] * len(users), pa.int32()),
    })  # fmt: skip


def rows(table: pa.Table) -> list[tuple]:
    columns = (table[name].to_pylist() for name in ("userId", "movieId", "rating"))
    return list(zip(*columns, strict=True))


KEPT = ratings((2, 1, 4.0), (2, 5, 3.0), (4, 1, 1.0), (7, 2, 2.5), (7, 3, 5.0), (9, 9, 0.5))


def test_changed_users_are_swapped_new_ones_slotted_in_and_emptied_ones_dropped():
    fresh = ratings((1, 4, 2.0), (4, 1, 1.5), (4, 2, 3.0), (8, 8, 4.0), (12, 1, 5.0))
    merged = merge_users(KEPT, np.array([1, 4, 7, 8, 12], np.uint32), fresh)
    assert rows(merged) == [
        (1, 4, 2.0), (2, 1, 4.0), (2, 5, 3.0), (4, 1, 1.5), (4, 2, 3.0),
        (8, 8, 4.0), (9, 9, 0.5), (12, 1, 5.0),
    ]  # fmt: skip
    assert merged.schema == KEPT.schema


def test_nothing_changed_keeps_everything():
    assert rows(merge_users(KEPT, np.array([], np.uint32), ratings())) == rows(KEPT)


def test_every_user_changed_gives_the_fresh_rows():
    fresh = ratings((3, 1, 1.0))
    assert rows(merge_users(KEPT, np.array([2, 3, 4, 7, 9], np.uint32), fresh)) == rows(fresh)


def test_no_ratings_at_all_is_an_empty_table():
    merged = merge_users(ratings(), np.array([5], np.uint32), ratings())
    assert merged.num_rows == 0 and merged.schema == KEPT.schema


def test_a_base_not_sorted_by_user_is_refused():
    with pytest.raises(ValueError, match="not sorted"):
        merge_users(ratings((3, 1, 1.0), (2, 1, 1.0)), np.array([2], np.uint32), ratings())
