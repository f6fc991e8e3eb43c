"""Positions in ranked sequences once some slots are excluded, for many queries at once."""

from __future__ import annotations

import numpy as np

from pipeline.data.indexing import group_codes, group_starts

BAND = np.int64(1) << np.int64(32)


def nth_unexcluded(excluded: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Position of the n-th (0-based) slot of 0, 1, 2, ... that is not in `excluded`.

    `excluded` must be sorted and unique. With t_i = excluded_i - i (non-decreasing), exactly
    #{i : t_i <= n} excluded slots lie before the answer, so the answer is n plus that count:
    one binary search per query instead of walking the sequence.
    """
    n = np.asarray(n, np.int64)
    zeros = np.zeros(n.shape, np.int64)
    return nth_unexcluded_grouped(np.zeros(len(excluded), np.int64), excluded, zeros, n)


def nth_unexcluded_grouped(
    excluded_group: np.ndarray, excluded: np.ndarray, query_group: np.ndarray, n: np.ndarray
) -> np.ndarray:
    """`nth_unexcluded` for many independent sequences (groups, e.g. users) in one pass.

    Each group lives in its own band of 2**32 values, so one sorted array serves every group.
    Slots and n must be below 2**31.
    """
    key = np.asarray(excluded_group, np.int64) * BAND + np.asarray(excluded, np.int64)
    key.sort()
    shifted = key - (np.arange(len(key), dtype=np.int64) - group_starts(key // BAND))
    query_group = np.asarray(query_group, np.int64)
    n = np.asarray(n, np.int64)
    before = np.searchsorted(shifted, query_group * BAND + n, side="right")
    codes, groups = group_codes(query_group)
    first = np.searchsorted(key, groups.astype(np.int64) * BAND, side="left")[codes]
    return n + before - first
