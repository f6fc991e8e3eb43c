"""One movie in a version's movies hash: its JSON value, written by the batch writer and for a
movie added over HTTP, read by `cache.reader`."""

from __future__ import annotations

import json
import math

import redis

from cache.keys import VersionKeys


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


def add_movie(r: redis.Redis, version: str, movie_id: int, entry: str) -> None:
    """A movie added over HTTP joins the live version's movies hash, so it can be looked up at
    once; lists and similar movies take it in at the next retrain."""
    r.hset(VersionKeys(version).movies, movie_id, entry)
