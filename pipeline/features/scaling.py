"""Scaling: KMeans measures distance, so no column may dominate by its units alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import TransformerMixin
from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

from pipeline.data.indexing import group_codes
from pipeline.errors import check_choice
from pipeline.params import SCALINGS

CHUNK = 1 << 20  # rows per gather of the per-user statistics

SCALERS: dict[str, type[TransformerMixin]] = dict(
    zip(SCALINGS, (StandardScaler, MinMaxScaler, RobustScaler), strict=True)
)


def make_scaler(method: str) -> TransformerMixin:
    return SCALERS[check_choice("scaling", method, SCALERS)]()


def user_zscores(codes: np.ndarray, rating: np.ndarray, n_users: int) -> np.ndarray:
    """Each rating's z-score among its user's ratings (`codes`: the user of each row, 0..n-1).

    A user whose ratings are all equal has no spread; their ratings map to 0. Sums of half-star
    ratings and their squares are exact in float64, so a user's values depend neither on row
    order nor on the other users in the batch: one user refreshed alone gets the batch values.
    """
    r = np.array(rating, np.float64)  # a copy: squares and z-scores are computed in it, in place
    n = np.maximum(np.bincount(codes, minlength=n_users), 1)
    mean = np.bincount(codes, r, n_users) / n
    np.square(r, out=r)
    std = np.sqrt(np.maximum(np.bincount(codes, r, n_users) / n - mean * mean, 0.0))
    inverse = np.divide(1.0, std, out=np.zeros_like(std), where=std > 0)
    r[:] = rating
    for lo in range(0, len(r), CHUNK):  # gathered per chunk: no temporary as long as the ratings
        part, user = r[lo : lo + CHUNK], codes[lo : lo + CHUNK]
        part -= mean[user]
        part *= inverse[user]
    return r


def standardize_per_user(ratings: pd.DataFrame, method: str) -> np.ndarray:
    """Each user's ratings on that user's own scale: a 4 from a harsh rater means more.

    A user whose ratings are all equal has no spread; their ratings map to 0.
    """
    if method == "zscore":
        codes, users = group_codes(ratings["userId"])
        return user_zscores(codes, ratings["rating"].to_numpy(), len(users)).astype(np.float32)
    by_user = ratings.groupby("userId", sort=False)["rating"]
    x = ratings["rating"].to_numpy(np.float64)
    if method == "minmax":
        centre = by_user.transform("min")
        spread = by_user.transform("max") - centre
    elif method == "robust":
        centre = by_user.transform("median")
        spread = by_user.transform(lambda r: r.quantile(0.75) - r.quantile(0.25))
    else:
        make_scaler(method)  # raises the uniform error
    centre, spread = centre.to_numpy(np.float64), spread.to_numpy(np.float64)
    out = np.zeros_like(x)
    np.divide(x - centre, spread, out=out, where=spread > 0)
    return out.astype(np.float32)
