"""Per-user work: favorite cluster and the top unseen movies from it, for any set of users at once.

Users are independent, so the same functions serve all users in one batch, a chunk of users on
one worker, or a single user refreshed on demand.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from pipeline.lookup import group_codes, positions_of
from pipeline.positions import nth_unexcluded_grouped
from pipeline.ranking import cluster_order, popular_order


@dataclass
class Catalog:
    """What per-user work needs to know about movies, indexed by position in `movie_ids`."""

    movie_ids: np.ndarray  # sorted
    cluster: np.ndarray
    score: np.ndarray
    k: int
    depth: int
    ranked: np.ndarray  # positions grouped by cluster, best first
    cluster_start: np.ndarray  # where each cluster begins in `ranked` (k + 1 entries)
    rank_in_cluster: np.ndarray  # position of each movie inside its cluster's ranking
    popular: np.ndarray  # positions by popularity

    @classmethod
    def from_movies(cls, movies: pd.DataFrame, k: int, depth: int) -> Catalog:
        movies = movies.sort_values("movieId", ignore_index=True)
        cluster = movies["cluster"].to_numpy(np.int64)
        ranked = cluster_order(movies)
        start = np.searchsorted(cluster[ranked], np.arange(k + 1))
        rank_in_cluster = np.empty(len(movies), np.int64)
        rank_in_cluster[ranked] = np.arange(len(movies)) - start[cluster[ranked]]
        return cls(
            movies["movieId"].to_numpy(np.uint32),
            cluster,
            movies["score"].to_numpy(np.float64),
            k,
            depth,
            ranked,
            start,
            rank_in_cluster,
            popular_order(movies),
        )


def load_catalog(version_dir: str | Path) -> Catalog:
    version_dir = Path(version_dir)
    meta = json.loads((version_dir / "metadata.json").read_text())
    movies = pd.read_parquet(version_dir / "movies.parquet")
    return Catalog.from_movies(movies, meta["parameters"]["k"], meta["parameters"]["list_depth"])


def user_ids(version_dir: str | Path) -> np.ndarray:
    column = pq.read_table(Path(version_dir) / "ratings.parquet", columns=["userId"])["userId"]
    return np.unique(column.to_numpy())


def read_user_ratings(version_dir: str | Path, user_lo: int, user_hi: int) -> pd.DataFrame:
    """Ratings of users in [user_lo, user_hi]; row groups outside the range are not read."""
    return pd.read_parquet(
        Path(version_dir) / "ratings.parquet",
        filters=[("userId", ">=", user_lo), ("userId", "<=", user_hi)],
    )


@dataclass
class Rated:
    """Ratings as positions: a code per user (0..n-1, by id), the users, catalogue positions."""

    codes: np.ndarray
    users: np.ndarray
    movie: np.ndarray

    @classmethod
    def index(cls, ratings: pd.DataFrame, catalog: Catalog) -> Rated:
        codes, users = group_codes(ratings["userId"])
        movie = positions_of(catalog.movie_ids, ratings["movieId"].to_numpy())
        return cls(codes, users.astype(np.uint32), movie)


def cluster_counts(rated: Rated, catalog: Catalog) -> np.ndarray:
    """Users x clusters: how many movies each user rated in each cluster."""
    flat = rated.codes * catalog.k + catalog.cluster[rated.movie]
    n = len(rated.users)
    return np.bincount(flat, minlength=n * catalog.k).reshape(n, catalog.k)


def favorites(ratings: pd.DataFrame, catalog: Catalog) -> pd.DataFrame:
    """The cluster with most of the user's rated movies; ties go to the lowest cluster id."""
    return _favorites(Rated.index(ratings, catalog), catalog)


def _favorites(rated: Rated, catalog: Catalog) -> pd.DataFrame:
    users, counts = rated.users, cluster_counts(rated, catalog)
    frame = pd.DataFrame(
        {
            "userId": users,
            "favorite_cluster": counts.argmax(axis=1),
            "n_ratings": counts.sum(axis=1),
        }
    )
    per_cluster = pd.DataFrame(counts, columns=[f"n_c{c}" for c in range(catalog.k)])
    return pd.concat([frame, per_cluster], axis=1)


def _fill(
    order: np.ndarray,
    slot_of: np.ndarray,
    seen_user: np.ndarray,
    seen_movie: np.ndarray,
    users: np.ndarray,
    wanted: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """First `wanted[u]` movies of `order` per user `u`, skipping the movies each user has seen.

    `slot_of[m]` is movie m's slot in `order` (-1 when not in it). Returns (user, movie) pairs.
    """
    slots = slot_of[seen_movie]
    inside = slots >= 0
    user = np.repeat(users, wanted)
    nth = np.arange(len(user)) - np.repeat(np.cumsum(wanted) - wanted, wanted)
    slot = nth_unexcluded_grouped(seen_user[inside], slots[inside], user, nth)
    ok = slot < len(order)
    return user[ok], order[slot[ok]]


def recommend_users(ratings: pd.DataFrame, catalog: Catalog) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Favorites and, per user, the `depth` best-scored unseen movies of the favorite cluster.

    When the favorite cluster runs out, the list continues with the most popular unseen movies
    of other clusters (source "popular").
    """
    rated = Rated.index(ratings, catalog)
    fav = _favorites(rated, catalog)
    codes, seen = rated.codes, rated.movie
    favorite = fav["favorite_cluster"].to_numpy(np.int64)
    parts = []
    for c in range(catalog.k):
        users = np.flatnonzero(favorite == c)
        if len(users) == 0:
            continue
        parts.append(_lists_for_cluster(catalog, c, users, favorite[codes] == c, codes, seen))
    recs = pd.concat(parts, ignore_index=True) if parts else _empty_recs()
    recs = recs.sort_values(["user", "rank"], ignore_index=True)
    movie = recs["movie"].to_numpy()
    out = pd.DataFrame({
        "userId": fav["userId"].to_numpy()[recs["user"].to_numpy()],
        "rank": recs["rank"].to_numpy(np.int32),
        "movieId": catalog.movie_ids[movie],
        "score": catalog.score[movie],
        "cluster": catalog.cluster[movie].astype(np.int32),
        "source": recs["source"].to_numpy(),
    })  # fmt: skip
    return fav, out


def _lists_for_cluster(
    catalog: Catalog,
    c: int,
    users: np.ndarray,
    mine: np.ndarray,
    codes: np.ndarray,
    seen: np.ndarray,
) -> pd.DataFrame:
    """Lists of the users (codes) whose favorite is cluster c; `mine` marks their ratings."""
    members = catalog.ranked[catalog.cluster_start[c] : catalog.cluster_start[c + 1]]
    seen_user, seen_movie = codes[mine], seen[mine]
    in_cluster = np.where(catalog.cluster == c, catalog.rank_in_cluster, -1)
    wanted = np.full(len(users), catalog.depth, np.int64)
    user, movie = _fill(members, in_cluster, seen_user, seen_movie, users, wanted)
    parts = [pd.DataFrame({"user": user, "movie": movie, "source": "cluster"})]
    got = np.bincount(np.searchsorted(users, user), minlength=len(users))
    short = got < catalog.depth
    if short.any():
        others = catalog.popular[catalog.cluster[catalog.popular] != c]
        slot_of = np.full(len(catalog.movie_ids), -1, np.int64)
        slot_of[others] = np.arange(len(others))
        user, movie = _fill(
            others, slot_of, seen_user, seen_movie, users[short], catalog.depth - got[short]
        )
        parts.append(pd.DataFrame({"user": user, "movie": movie, "source": "popular"}))
    frame = pd.concat(parts, ignore_index=True)
    return frame.assign(rank=frame.groupby("user", sort=False).cumcount() + 1)


def _empty_recs() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user": pd.Series(dtype=np.int64),
            "rank": pd.Series(dtype=np.int64),
            "movie": pd.Series(dtype=np.int64),
            "source": pd.Series(dtype=object),
        }
    )
