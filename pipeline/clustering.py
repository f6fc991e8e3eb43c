"""Clustering of movie feature vectors, its quality metrics, and choosing k by silhouette."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.metrics import davies_bouldin_score, silhouette_score

ALGORITHMS = ("minibatch", "kmeans")


def make_clusterer(
    k: int = 10, algorithm: str = "minibatch", batch_size: int = 1000, random_state: int = 42
) -> KMeans | MiniBatchKMeans:
    """The spec's MiniBatchKMeans by default; full KMeans where exactness beats speed."""
    if algorithm == "minibatch":
        return MiniBatchKMeans(n_clusters=k, batch_size=batch_size, random_state=random_state)
    if algorithm == "kmeans":
        return KMeans(n_clusters=k, random_state=random_state, n_init=3)
    raise ValueError(f"unknown algorithm {algorithm!r}; choose from {', '.join(ALGORITHMS)}")


def _sample(n: int, size: int, random_state: int) -> np.ndarray:
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(random_state).choice(n, size, replace=False))


def cluster_metrics(
    X: np.ndarray,
    labels: np.ndarray,
    inertia: float,
    sample_size: int = 2_500,
    random_state: int = 42,
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


def choose_k(
    X: np.ndarray,
    k_values: Iterable[int],
    algorithm: str = "minibatch",
    batch_size: int = 1000,
    random_state: int = 42,
    sample_size: int = 2_500,
) -> tuple[int, dict[int, float]]:
    """The k with the best sampled silhouette; ties go to the smaller k."""
    rows = _sample(len(X), sample_size, random_state)
    scores = {}
    for k in sorted(set(k_values)):
        labels = make_clusterer(k, algorithm, batch_size, random_state).fit_predict(X)
        scores[k] = float(silhouette_score(X[rows], labels[rows]))
    best = max(scores, key=lambda k: (scores[k], -k))
    return best, scores
