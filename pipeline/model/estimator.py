"""The saved model: featurizer and clusterer in one scikit-learn Pipeline, so new movies fit in.

`pipeline.model.loader` saves it (joblib and ONNX), loads it back verified, and places a movie
with either format (`assign_movie`, kept importable from here).
"""

from __future__ import annotations

from sklearn.pipeline import Pipeline

from pipeline.clusters.clustering import make_clusterer
from pipeline.features.featurizer import MovieFeaturizer
from pipeline.model.loader import assign_movie
from pipeline.params import PipelineParams

__all__ = ["assign_movie", "build_model"]


def build_model(params: PipelineParams) -> Pipeline:
    featurizer = MovieFeaturizer(
        params.scaling, params.tag_features, factor_weight=params.factor_weight
    )
    clusterer = make_clusterer(params.k, params.algorithm, params.batch_size, params.random_state)
    return Pipeline([("features", featurizer), ("cluster", clusterer)])
