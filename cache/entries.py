"""The JSON value of one movie in a version's movies hash: written by the batch writer and by a
movie added over HTTP, read by `cache.reader`."""

from __future__ import annotations

import json
import math


def movie_entry(
    title: str, genres: str, cluster: int, score: float, n_ratings: int, avg_rating: float
) -> str:
    entry = {
        "title": title,
        "genres": genres,
        "cluster": int(cluster),
        "score": round(float(score), 4),
        "n_ratings": int(n_ratings),
        "avg_rating": None if math.isnan(avg_rating) else round(float(avg_rating), 4),
    }
    return json.dumps(entry, separators=(",", ":"))
