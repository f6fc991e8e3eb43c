"""What each cluster is: its size, leading genres, ratings and best-known movies."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

from pipeline.clusters.names import ClusterName

TOP_GENRES = 5
TOP_MOVIES = 10
MAP_POINTS = 2000  # the dashboard's cluster map: enough to see the shapes, small enough to send


class Projection(NamedTuple):
    rows: np.ndarray  # the sampled rows of X, ascending
    xy: np.ndarray  # their first two principal components


def pca_2d(X: np.ndarray, size: int, random_state: int) -> Projection:
    """At most `size` rows, sampled, so a picture stays readable and cheap at any size."""
    rows = np.arange(len(X))
    if len(X) > size:
        rows = np.sort(np.random.default_rng(random_state).choice(len(X), size, False))
    return Projection(rows, PCA(n_components=2, random_state=random_state).fit_transform(X[rows]))


def cluster_map(X: np.ndarray, movies: pd.DataFrame, random_state: int) -> list[list]:
    """[movieId, x, y, cluster] of sampled movies in the 2-D PCA of the clustering features."""
    rows, xy = pca_2d(X, MAP_POINTS, random_state)
    ids = movies["movieId"].to_numpy()[rows]
    clusters = movies["cluster"].to_numpy()[rows]
    return [
        [int(movie), round(float(x), 3), round(float(y), 3), int(cluster)]
        for movie, (x, y), cluster in zip(ids, xy, clusters, strict=True)
    ]


def genre_share(movies: pd.DataFrame, k: int) -> pd.DataFrame:
    """Clusters x genres: the share of a cluster's movies that carry each genre."""
    one_hot = movies["genres"].str.get_dummies("|")
    share = one_hot.groupby(movies["cluster"].to_numpy()).mean()
    return share.reindex(range(k), fill_value=0.0).sort_index(axis=1)


def cluster_summary(
    movies: pd.DataFrame, share: pd.DataFrame, names: list[ClusterName]
) -> list[dict]:
    """Per cluster; popularity is the number of ratings its movies received. `share` is
    `genre_share(movies, k)`, `names` one per cluster (pipeline.clusters.names)."""
    k = len(share)
    rated_sum = movies["avg_rating"].fillna(0).to_numpy() * movies["n_ratings"].to_numpy()
    summary = []
    for c in range(k):
        members = movies["cluster"].to_numpy() == c
        n_ratings = int(movies["n_ratings"].to_numpy()[members].sum())
        top_genres = share.loc[c].sort_values(ascending=False, kind="stable")
        top_genres = top_genres[top_genres > 0].head(TOP_GENRES)
        ranked = movies.loc[members].sort_values(["n_ratings", "movieId"], ascending=[False, True])
        summary.append({
            "cluster": c,
            "name": names[c].name,
            "description": names[c].description,
            "descriptors": names[c].descriptors,
            "size": int(members.sum()),
            "top_genres": [{"genre": g, "share": round(float(s), 4)}
                           for g, s in top_genres.items()],
            "avg_rating": round(float(rated_sum[members].sum() / n_ratings), 4)
            if n_ratings else None,
            "n_ratings": n_ratings,
            "top_movies": ranked["movieId"].head(TOP_MOVIES).astype(int).tolist(),
        })  # fmt: skip
    return summary
