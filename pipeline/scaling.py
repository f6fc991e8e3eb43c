"""Scaling: KMeans measures distance, so no column may dominate by its units alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import TransformerMixin
from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

SCALERS: dict[str, type[TransformerMixin]] = {
    "zscore": StandardScaler,
    "minmax": MinMaxScaler,
    "robust": RobustScaler,
}


def make_scaler(method: str) -> TransformerMixin:
    if method not in SCALERS:
        raise ValueError(f"unknown scaling {method!r}; choose from {', '.join(SCALERS)}")
    return SCALERS[method]()


def standardize_per_user(ratings: pd.DataFrame, method: str = "zscore") -> np.ndarray:
    """Each user's ratings on that user's own scale: a 4 from a harsh rater means more.

    A user whose ratings are all equal has no spread; their ratings map to 0.
    """
    by_user = ratings.groupby("userId", sort=False)["rating"]
    x = ratings["rating"].to_numpy(np.float64)
    if method == "zscore":
        centre, spread = by_user.transform("mean"), by_user.transform("std", ddof=0)
    elif method == "minmax":
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
