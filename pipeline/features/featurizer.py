"""Movie features for clustering, as a transformer so that a saved model can place new movies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.utils.validation import check_is_fitted

from pipeline.data.indexing import positions_of
from pipeline.features.factors import PREFIX
from pipeline.features.scaling import make_scaler

NUMERIC = ("avg_rating", "log_ratings")


def movie_stats(movies: pd.DataFrame, ratings: pd.DataFrame) -> pd.DataFrame:
    """Per movie: rating count and mean rating (NaN when unrated), aligned with `movies`."""
    ids = movies["movieId"].to_numpy()
    index = positions_of(ids, ratings["movieId"].to_numpy())
    counts = np.bincount(index, minlength=len(ids))
    sums = np.bincount(index, weights=ratings["rating"].to_numpy(np.float64), minlength=len(ids))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(counts > 0, sums / counts, np.nan)
    return movies.assign(n_ratings=counts.astype(np.int64), avg_rating=mean)


def tag_documents(movies: pd.DataFrame, tags: pd.DataFrame) -> pd.Series:
    """One text per movie of its filtered tags, for TF-IDF; empty when a movie has none."""
    docs = tags.groupby("movieId")["filtered"].agg(" ".join)
    return movies["movieId"].map(docs).fillna("")


class MovieFeaturizer(TransformerMixin, BaseEstimator):
    """Genres one-hot, scaled mean rating and log rating count, optional tag TF-IDF, optional
    collaborative factors.

    Input: a frame with `genres` ('|'-joined), `avg_rating` (NaN when unrated), `n_ratings`, and
    `tags` when `tag_features` > 0. Unrated movies take the mean rating of rated ones (the scaled
    centre), not 0, which would mark them as the worst movies in the catalogue. `factor_*`
    columns present at fit time (`pipeline.features.factors`) join as unit vectors times
    `factor_weight`: direction says who likes a movie, length only how often it was rated. A
    movie without them (a new one) gets zeros and is placed by genres and statistics.
    """

    def __init__(
        self,
        scaling: str = "zscore",
        tag_features: int = 0,
        tag_weight: float = 1.0,
        factor_weight: float = 1.0,
    ):
        self.scaling = scaling
        self.tag_features = tag_features
        self.tag_weight = tag_weight
        self.factor_weight = factor_weight

    def _numeric(self, X: pd.DataFrame) -> np.ndarray:
        avg = X["avg_rating"].to_numpy(np.float64)
        avg = np.where(np.isnan(avg), self.rating_fill_, avg)
        return np.column_stack([avg, np.log1p(X["n_ratings"].to_numpy(np.float64))])

    def fit(self, X: pd.DataFrame, y=None) -> MovieFeaturizer:
        genres = X["genres"].fillna("").str.get_dummies("|")
        self.genres_ = np.array(sorted(genres.columns), dtype=object)
        rated = X["avg_rating"].dropna()
        self.rating_fill_ = float(rated.mean()) if len(rated) else 0.0
        self.scaler_ = make_scaler(self.scaling).fit(self._numeric(X))
        self.tfidf_ = None
        if self.tag_features > 0:
            self.tfidf_ = TfidfVectorizer(max_features=self.tag_features, min_df=2)
            self.tfidf_.fit(X["tags"].fillna(""))
        self.factors_ = []
        if self.factor_weight > 0:
            self.factors_ = [c for c in X.columns if str(c).startswith(PREFIX)]
        return self

    def _factors(self, X: pd.DataFrame) -> np.ndarray:
        values = X.reindex(columns=self.factors_, fill_value=0.0).to_numpy(np.float64)
        norm = np.linalg.norm(values, axis=1, keepdims=True)
        unit = np.divide(values, norm, out=np.zeros_like(values), where=norm > 0)
        return self.factor_weight * unit

    def transform(self, X: pd.DataFrame | Mapping[str, Sequence]) -> np.ndarray:
        """`X` may also be a dict of columns, as `assign_movie` passes one movie."""
        check_is_fitted(self, "scaler_")
        X = pd.DataFrame(X)
        genres = X["genres"].fillna("").str.get_dummies("|")
        one_hot = genres.reindex(columns=self.genres_, fill_value=0).to_numpy(np.float64)
        parts = [one_hot, self.scaler_.transform(self._numeric(X))]
        if self.tfidf_ is not None:
            parts.append(self.tag_weight * self.tfidf_.transform(X["tags"].fillna("")).toarray())
        if self.factors_:
            parts.append(self._factors(X))
        return np.hstack(parts)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        names = [f"genre_{g}" for g in self.genres_] + list(NUMERIC)
        if self.tfidf_ is not None:
            names += [f"tag_{t}" for t in self.tfidf_.get_feature_names_out()]
        names += list(self.factors_)
        return np.array(names, dtype=object)
