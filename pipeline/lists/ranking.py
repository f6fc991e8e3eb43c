"""Movie-level rankings: the score inside a cluster, the popular list, similar-movie lists."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.neighbors import NearestNeighbors

from pipeline.data.indexing import offsets_in_runs


def bayesian_score(
    n_ratings: np.ndarray, avg_rating: np.ndarray, global_mean: float, prior_count: float
) -> np.ndarray:
    """Mean rating shrunk towards the global mean, so one 5-star vote does not top a list."""
    n = np.asarray(n_ratings, np.float64)
    avg = np.nan_to_num(np.asarray(avg_rating, np.float64), nan=global_mean)
    return (n * avg + prior_count * global_mean) / (n + prior_count)


def popular_order(movies: pd.DataFrame) -> np.ndarray:
    """Row positions by rating count, then score, then id: a stable, total order."""
    return np.lexsort(
        (movies["movieId"].to_numpy(), -movies["score"].to_numpy(), -movies["n_ratings"].to_numpy())
    )


def cluster_order(movies: pd.DataFrame) -> np.ndarray:
    """Row positions grouped by cluster, best score first inside each cluster."""
    return np.lexsort(
        (
            movies["movieId"].to_numpy(),
            -movies["n_ratings"].to_numpy(),
            -movies["score"].to_numpy(),
            movies["cluster"].to_numpy(),
        )
    )


def popular_list(movies: pd.DataFrame, depth: int) -> pd.DataFrame:
    top = popular_order(movies)[:depth]
    return pd.DataFrame(
        {
            "rank": np.arange(1, len(top) + 1, dtype=np.int32),
            "movieId": movies["movieId"].to_numpy()[top],
            "score": movies["n_ratings"].to_numpy()[top].astype(np.float64),
        }
    )


def similar_movies(X: np.ndarray, movies: pd.DataFrame, depth: int) -> pd.DataFrame:
    """For each movie, its nearest neighbours in feature space among its own cluster.

    score = 1 / (1 + distance): 1.0 for an identical feature vector.
    """
    ids, clusters = movies["movieId"].to_numpy(), movies["cluster"].to_numpy()
    frames = []
    for c in np.unique(clusters):
        members = np.flatnonzero(clusters == c)
        if len(members) < 2:
            continue
        nn = NearestNeighbors(n_neighbors=min(depth + 1, len(members)), algorithm="brute")
        distance, neighbour = nn.fit(X[members]).kneighbors(X[members])
        own = np.arange(len(members))[:, None]
        keep = neighbour != own
        keep[keep.sum(axis=1) > depth, -1] = False  # self was not returned: drop the farthest
        rows, _ = np.nonzero(keep)
        width = keep.sum(axis=1)
        frames.append(pd.DataFrame({
            "movieId": ids[members][rows],
            "rank": offsets_in_runs(width, np.int32) + 1,
            "similarId": ids[members][neighbour[keep]],
            "score": 1.0 / (1.0 + distance[keep]),
        }))  # fmt: skip
    return pd.concat(frames, ignore_index=True).sort_values(["movieId", "rank"], ignore_index=True)
