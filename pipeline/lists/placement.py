"""Where a movie whose genres changed after training belongs in that version: the cluster the
version's model gives it with all its features (rating statistics, tags, collaborative
factors, as for a new movie), and its nearest movies in that cluster."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from pipeline.artifacts import DEFAULT_MODEL_FORMAT, VersionFolder
from pipeline.features.factors import PREFIX
from pipeline.model.loader import assign_movie, load_model


class Placement(NamedTuple):
    cluster: int
    similar: list[tuple[int, float]]  # (movieId, score), nearest first


def place_movie(
    folder: VersionFolder, movie_id: int, genres: str, tags: str, depth: int
) -> Placement:
    movies = pd.read_parquet(folder.movies)
    factor_columns = [c for c in movies.columns if c.startswith(PREFIX)]
    row = movies[movies["movieId"] == movie_id]
    known = not row.empty  # a movie added over HTTP after training has no row
    factors = row[factor_columns].iloc[0].to_numpy(float) if known and factor_columns else None
    cluster = assign_movie(
        load_model(folder, DEFAULT_MODEL_FORMAT),
        genres,
        avg_rating=float(row["avg_rating"].iloc[0]) if known else None,
        n_ratings=int(row["n_ratings"].iloc[0]) if known else 0,
        tags=tags,
        factors=None if factors is None else factors.tolist(),
    )
    members = movies[(movies["cluster"] == cluster) & (movies["movieId"] != movie_id)]
    return Placement(cluster, nearest(members, factor_columns, factors, depth))


def nearest(
    members: pd.DataFrame, factor_columns: list[str], factors: np.ndarray | None, depth: int
) -> list[tuple[int, float]]:
    """The members closest to `factors` (unit vectors: who likes the movies), score 1 / (1 +
    distance) as for the trained lists; without factors, the members with the best scores."""
    if factors is None or not factor_columns or not np.linalg.norm(factors):
        best = members.nlargest(depth, "score")
        return [(int(m), float(s)) for m, s in zip(best["movieId"], best["score"], strict=True)]
    vectors = members[factor_columns].to_numpy(float)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    distance = np.linalg.norm(unit - factors / np.linalg.norm(factors), axis=1)
    order = np.argsort(distance, kind="stable")[:depth]
    ids = members["movieId"].to_numpy()
    return [(int(ids[i]), float(1.0 / (1.0 + distance[i]))) for i in order]
