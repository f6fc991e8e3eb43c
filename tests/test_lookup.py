import numpy as np
import pandas as pd
import pytest

from pipeline.data.indexing import DENSE_LIMIT, group_codes, positions_of


@pytest.mark.parametrize("offset", [0, DENSE_LIMIT], ids=["dense table", "binary search"])
def test_positions_of(offset):
    ids = np.array([3, 7, 9, 20], dtype=np.int64) + offset
    values = np.array([9, 3, 4, 20, 0, 21, 7], dtype=np.int64) + offset
    found = positions_of(ids, values)
    assert found.tolist() == [2, 0, -1, 3, -1, -1, 1]
    assert found.dtype == np.int32  # half the memory of int64 at 25M ratings


def test_positions_of_float_values_need_a_whole_number():
    ids = np.array([1, 2, 3], dtype=np.uint32)
    assert positions_of(ids, np.array([2.0, 2.5, np.nan, -1.0, 3.0])).tolist() == [1, -1, -1, -1, 2]


@pytest.mark.parametrize(
    "keys", [[5, 5, 8, 9, 9, 9], [9, 5, 9, 8, 5, 9]], ids=["sorted", "shuffled"]
)
def test_group_codes(keys):
    codes, uniques = group_codes(pd.Series(keys))
    assert uniques.tolist() == [5, 8, 9]
    assert (uniques[codes] == np.array(keys)).all()


def test_positions_of_values_all_in_range_take_the_one_gather_path_with_the_same_answer():
    ids = np.array([3, 7, 9, 20], dtype=np.uint32)
    values = np.array([9, 3, 4, 20, 7, 8], dtype=np.uint32)
    assert positions_of(ids, values).tolist() == [2, 0, -1, 3, 1, -1]
    assert positions_of(ids, values.astype(np.float64)).tolist() == [2, 0, -1, 3, 1, -1]
