"""The saved model: featurizer and clusterer in one scikit-learn Pipeline, so new movies fit in.

`pipeline.model.export` saves it (joblib and ONNX); `pipeline.model.loader` loads it back
verified and places a movie with either format.
"""

from __future__ import annotations

from sklearn.pipeline import Pipeline

from pipeline.clusters.clustering import make_clusterer
from pipeline.features.featurizer import MovieFeaturizer
from pipeline.params import PipelineParams


def build_model(params: PipelineParams) -> Pipeline:
    featurizer = MovieFeaturizer(
        params.scaling, params.tag_features, factor_weight=params.factor_weight
    )
    clusterer = make_clusterer(params.k, params.algorithm, params.batch_size, params.random_state)
    return Pipeline([("features", featurizer), ("cluster", clusterer)])
