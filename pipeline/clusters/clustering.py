"""Clustering of movie feature vectors, its quality metrics, and choosing k by silhouette."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.metrics import davies_bouldin_score, silhouette_score

from pipeline.errors import check_choice
from pipeline.params import ALGORITHMS, PipelineParams


def make_clusterer(
    k: int, algorithm: str, batch_size: int, random_state: int
) -> KMeans | MiniBatchKMeans:
    """The spec's MiniBatchKMeans; full KMeans where exactness beats speed."""
    if check_choice("algorithm", algorithm, ALGORITHMS) == "minibatch":
        return MiniBatchKMeans(n_clusters=k, batch_size=batch_size, random_state=random_state)
    return KMeans(n_clusters=k, random_state=random_state, n_init=3)


def _sample(n: int, size: int, random_state: int) -> np.ndarray:
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(random_state).choice(n, size, replace=False))


def cluster_metrics(
    X: np.ndarray,
    labels: np.ndarray,
    inertia: float,
    *,
    random_state: int,
    sample_size: int = 2_500,
) -> dict:
    """Silhouette is quadratic in rows, so it is computed on a fixed sample."""
    k = int(labels.max()) + 1
    rows = _sample(len(X), sample_size, random_state)
    separable = len(np.unique(labels[rows])) > 1
    return {
        "inertia": float(inertia),
        "silhouette_sampled": float(silhouette_score(X[rows], labels[rows])) if separable else None,
        "silhouette_sample_size": len(rows),
        "davies_bouldin": float(davies_bouldin_score(X, labels)) if separable else None,
        "cluster_sizes": np.bincount(labels, minlength=k).astype(int).tolist(),
    }


class ChosenK(NamedTuple):
    k: int
    silhouettes: dict[int, float]  # sampled silhouette of every k tried


def choose_k(
    X: np.ndarray, k_values: Iterable[int], params: PipelineParams, sample_size: int = 2_500
) -> ChosenK:
    """The k with the best sampled silhouette; ties go to the smaller k."""
    rows = _sample(len(X), sample_size, params.random_state)
    scores = {}
    for k in sorted(set(k_values)):
        clusterer = make_clusterer(k, params.algorithm, params.batch_size, params.random_state)
        scores[k] = float(silhouette_score(X[rows], clusterer.fit_predict(X)[rows]))
    best = max(scores, key=lambda k: (scores[k], -k))
    return ChosenK(best, scores)
