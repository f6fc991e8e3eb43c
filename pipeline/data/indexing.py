"""Id -> position lookups for millions of rows at once."""

from __future__ import annotations

import numpy as np
import pandas as pd

DENSE_LIMIT = 1 << 26  # ids below this get a lookup table (at most 256 MB of int32)


def positions_of(sorted_ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Position of each value in `sorted_ids` (unique, ascending), -1 where it is absent.

    MovieLens ids are small integers, so a dense table answers with one gather per row, several
    times faster than a binary search; large or odd ids fall back to the binary search.
    Positions are int32 whenever they fit: at 25M ratings that is 100 MB less per lookup.
    """
    ids = np.asarray(sorted_ids)
    values = np.asarray(values)
    position = _position_dtype(len(ids))
    if len(ids) == 0:
        return np.full(len(values), -1, position)
    dense = int(ids[-1]) < DENSE_LIMIT and int(ids[0]) >= 0
    if dense and values.dtype.kind in "iu" and _within(values, int(ids[0]), int(ids[-1])):
        return _lookup_table(ids)[values]  # the common case: one gather, no masks
    whole = values == np.floor(values) if values.dtype.kind == "f" else True
    valid = (values >= ids[0]) & (values <= ids[-1]) & whole
    out = np.full(len(values), -1, position)
    if dense:
        out[valid] = _lookup_table(ids)[values[valid].astype(np.int64)]
        return out
    found = np.searchsorted(ids, values[valid])
    out[valid] = np.where(ids[found.clip(max=len(ids) - 1)] == values[valid], found, -1)
    return out


def _position_dtype(n: int) -> type[np.signedinteger]:
    return np.int32 if n <= np.iinfo(np.int32).max else np.int64


def _within(values: np.ndarray, low: int, high: int) -> bool:
    return len(values) == 0 or (int(values.min()) >= low and int(values.max()) <= high)


def _lookup_table(ids: np.ndarray) -> np.ndarray:
    """Position of each id at index id, -1 elsewhere (ids ascending, small, non-negative)."""
    table = np.full(int(ids[-1]) + 1, -1, _position_dtype(len(ids)))
    table[ids.astype(np.int64)] = np.arange(len(ids))
    return table


def group_starts(sorted_keys: np.ndarray) -> np.ndarray:
    """For each element of a sorted array, the index where its run of equal keys begins."""
    index = np.arange(len(sorted_keys), dtype=np.int64)
    if len(index) == 0:
        return index
    new = np.empty(len(index), dtype=bool)
    new[0] = True
    np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=new[1:])
    return np.maximum.accumulate(np.where(new, index, 0))


def offsets_in_runs(lengths: np.ndarray, dtype: type = np.int64) -> np.ndarray:
    """0, 1, ... within each run, for runs of `lengths` laid end to end."""
    starts = (np.cumsum(lengths) - lengths).astype(dtype)
    return np.arange(int(lengths.sum()), dtype=dtype) - np.repeat(starts, lengths)


def count_distinct(values: np.ndarray) -> int:
    """Distinct values; ratings sorted by user count their users in one linear pass."""
    if len(values) and bool(np.all(values[1:] >= values[:-1])):
        return 1 + int(np.count_nonzero(values[1:] != values[:-1]))
    return len(pd.unique(values))


def group_codes(keys: pd.Series | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dense codes 0..n-1 of `keys` in ascending key order, and the distinct keys.

    Ratings are stored sorted by user, which makes this one linear pass instead of a hash.
    """
    values = np.asarray(keys)
    if len(values) and bool(np.all(values[1:] >= values[:-1])):
        change = np.empty(len(values), dtype=bool)
        change[0] = True
        np.not_equal(values[1:], values[:-1], out=change[1:])
        return np.cumsum(change) - 1, values[change]
    codes, uniques = pd.factorize(values, sort=True)
    return codes.astype(np.int64), np.asarray(uniques)
