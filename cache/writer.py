"""Write one model version folder into its Redis namespace, in pipelined chunks.

Lists hold movie ids only; titles and genres live once in the movies hash, which keeps the
per-user entries small. Values are JSON so any client can read them and nothing is unpickled.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator

import numpy as np
import pandas as pd
import redis

from cache.entries import movie_entry
from cache.keys import VersionKeys
from pipeline.artifacts import UserLists, VersionFolder
from pipeline.lists.ranking import cluster_order
from pipeline.lists.users import SOURCES

FIELDS_PER_COMMAND = 1000
COMMANDS_PER_ROUND_TRIP = 20
# One character per list entry; the version's metadata carries the legend (index -> name).
SOURCE_CODES = {name: str(code) for code, name in enumerate(SOURCES)}
_COUNT_COLUMN = re.compile(r"n_c(\d+)")
_LIKING_COLUMN = re.compile(r"w_c(\d+)")


def write_catalog(
    r: redis.Redis, folder: VersionFolder, n_users: int, extra_meta: dict | None = None
) -> None:
    """Movies, similar lists, clusters, popular list, then the metadata: written last, so a
    reader that finds it finds the movie-level keys complete (users may still be arriving while
    the version is staged; only the pointer flip makes it visible)."""
    version = folder.version
    ns = VersionKeys(version)
    movies = pd.read_parquet(folder.movies)
    similar = pd.read_parquet(folder.similar)
    popular = pd.read_parquet(folder.popular)
    summary = json.loads(folder.summary.read_text())
    metadata = folder.read_metadata()

    hset_chunked(r, ns.movies, _movie_entries(movies))
    hset_chunked(r, ns.similar, _similar_entries(similar))
    members = _cluster_members(movies)
    pipe = r.pipeline(transaction=False)
    for cluster, ids in members.items():
        pipe.set(ns.members(cluster), json.dumps(ids))
    pipe.set(ns.clusters, json.dumps(summary))
    pipe.set(ns.popular, json.dumps(_ranked_ids(popular)))
    if folder.cluster_map.is_file():
        pipe.set(ns.cluster_map, folder.cluster_map.read_text())
    if folder.onboarding.is_file():
        pipe.set(ns.onboarding, json.dumps(_ranked_ids(pd.read_parquet(folder.onboarding))))
    pipe.execute()

    depth = list_depth(metadata, similar)
    meta = {
        **metadata,
        "version": version,
        "depth": depth,
        "sources": list(SOURCES),
        "counts": {"movies": len(movies), "users": n_users, "clusters": len(summary)},
        **(extra_meta or {}),
    }
    r.set(ns.meta, json.dumps(meta))


def write_users(r: redis.Redis, version: str, lists: UserLists) -> int:
    """Store each user's favorite cluster, counts and ranked list; returns users written."""
    return hset_chunked(r, VersionKeys(version).users, encode_users(*lists))


def delete_user(r: redis.Redis, version: str, user_id: int) -> bool:
    """Drop a user with no ratings left: they get a 404 with a hint again, not a stale list."""
    return bool(r.hdel(VersionKeys(version).users, user_id))


def encode_users(
    favorites: pd.DataFrame, recommendations: pd.DataFrame
) -> Iterator[tuple[int, str]]:
    """(userId, JSON) per user: favorite cluster, counts per cluster, ranked ids, scores, sources.

    Titles are not repeated here: the reader looks them up in the movies hash.
    """
    count_columns = _numbered(favorites, _COUNT_COLUMN)
    liking_columns = _numbered(favorites, _LIKING_COLUMN)
    recs = recommendations.sort_values(["userId", "rank"], kind="stable")
    rec_users = recs["userId"].to_numpy()
    rec_movies = recs["movieId"].to_numpy().tolist()
    rec_scores = np.round(recs["score"].to_numpy(dtype="float64"), 4).tolist()
    rec_sources = "".join(_source_codes(recs["source"]))

    users = favorites["userId"].to_numpy()
    starts = np.searchsorted(rec_users, users, side="left")
    ends = np.searchsorted(rec_users, users, side="right")
    counts = favorites[count_columns].to_numpy(dtype="int64").tolist()
    liking = np.round(favorites[liking_columns].to_numpy(dtype="float64"), 2).tolist()
    fav_clusters = favorites["favorite_cluster"].to_numpy().tolist()
    n_ratings = favorites["n_ratings"].to_numpy().tolist()
    for i, user in enumerate(users.tolist()):
        lo, hi = int(starts[i]), int(ends[i])
        entry = {
            "favorite_cluster": fav_clusters[i],
            "n_ratings": n_ratings[i],
            "counts": counts[i],
            **({"liking": liking[i]} if liking_columns else {}),
            "movies": rec_movies[lo:hi],
            "scores": rec_scores[lo:hi],
            "sources": rec_sources[lo:hi],
        }
        yield user, json.dumps(entry, separators=(",", ":"))


def _numbered(frame: pd.DataFrame, pattern: re.Pattern) -> list[str]:
    """Per-cluster columns (n_c0, n_c1, ... or w_c0, ...) in cluster order."""
    found = [c for c in frame.columns if pattern.fullmatch(c)]
    return sorted(found, key=lambda c: int(pattern.fullmatch(c).group(1)))


def hset_chunked(r: redis.Redis, key: str, entries: Iterable[tuple[int, str]]) -> int:
    """HSET in slices of FIELDS_PER_COMMAND, several slices per round trip; returns fields sent."""
    pipe = r.pipeline(transaction=False)
    batch: dict[int, str] = {}
    written = 0
    for field, value in entries:
        batch[field] = value
        if len(batch) == FIELDS_PER_COMMAND:
            pipe.hset(key, mapping=batch)
            written += len(batch)
            batch = {}
            if len(pipe) >= COMMANDS_PER_ROUND_TRIP:
                pipe.execute()
    if batch:
        pipe.hset(key, mapping=batch)
        written += len(batch)
    pipe.execute()
    return written


def list_depth(metadata: dict, similar: pd.DataFrame) -> int:
    """How many items each cached list holds: the trained parameter, else the longest list."""
    depth = metadata.get("parameters", {}).get("list_depth")
    if depth:
        return int(depth)
    return int(similar["rank"].max()) if len(similar) else 0


def _movie_entries(movies: pd.DataFrame) -> Iterator[tuple[int, str]]:
    columns = ["movieId", "title", "genres", "cluster", "score", "n_ratings", "avg_rating"]
    for movie_id, *values in movies[columns].itertuples(index=False):
        yield int(movie_id), movie_entry(*values)


def _similar_entries(similar: pd.DataFrame) -> Iterator[tuple[int, str]]:
    ordered = similar.sort_values(["movieId", "rank"], kind="stable")
    owners = ordered["movieId"].to_numpy()
    movies, starts = np.unique(owners, return_index=True)
    ends = [*starts[1:].tolist(), len(owners)]
    similar_ids = ordered["similarId"].to_numpy().tolist()
    scores = np.round(ordered["score"].to_numpy(dtype="float64"), 4).tolist()
    for movie_id, lo, hi in zip(movies.tolist(), starts.tolist(), ends, strict=True):
        entry = {"movies": similar_ids[lo:hi], "scores": scores[lo:hi]}
        yield movie_id, json.dumps(entry, separators=(",", ":"))


def _cluster_members(movies: pd.DataFrame) -> dict[int, list[int]]:
    """Each cluster's movies in the order the pipeline ranks them for recommendations."""
    ordered = movies.iloc[cluster_order(movies)]
    return {
        int(cluster): group["movieId"].astype("int64").tolist()
        for cluster, group in ordered.groupby("cluster", sort=True)
    }


def _ranked_ids(frame: pd.DataFrame) -> list[int]:
    return frame.sort_values("rank", kind="stable")["movieId"].astype("int64").tolist()


def _source_codes(sources: pd.Series) -> Iterator[str]:
    for source in sources:
        try:
            yield SOURCE_CODES[source]
        except KeyError:
            raise ValueError(
                f"user_recommendations source {source!r} is not one of {sorted(SOURCE_CODES)}"
            ) from None
