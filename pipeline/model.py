"""The saved model: featurizer and clusterer in one scikit-learn Pipeline, so new movies fit in."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd
from sklearn.pipeline import Pipeline

from pipeline.clustering import make_clusterer
from pipeline.factors import factor_columns
from pipeline.features import MovieFeaturizer
from pipeline.params import PipelineParams


def build_model(params: PipelineParams) -> Pipeline:
    featurizer = MovieFeaturizer(
        params.scaling, params.tag_features, factor_weight=params.factor_weight
    )
    clusterer = make_clusterer(params.k, params.algorithm, params.batch_size, params.random_state)
    return Pipeline([("features", featurizer), ("cluster", clusterer)])


def assign_movie(
    model: Pipeline,
    genres: str,
    avg_rating: float | None = None,
    n_ratings: int = 0,
    tags: str = "",
    factors: Sequence[float] | None = None,
) -> int:
    """Cluster of a movie the model has not seen; a new movie usually has no ratings yet, and
    without `factors` (its collaborative embedding) it is placed by genres and statistics."""
    row = pd.DataFrame({
        "genres": [genres],
        "avg_rating": [math.nan if avg_rating is None else float(avg_rating)],
        "n_ratings": [n_ratings],
        "tags": [tags],
    })  # fmt: skip
    if factors is not None:
        row[factor_columns(len(factors))] = [list(factors)]
    return int(model.predict(row)[0])
