"""Per-user work: favorite clusters and the best unseen movies in them, for any set of users.

Users are independent, so the same functions serve all users in one batch, a chunk of users on
one worker, or a single user refreshed on demand.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import scipy.sparse as sp

from pipeline.artifacts import UserLists, VersionFolder
from pipeline.data.indexing import group_codes, offsets_in_runs, positions_of
from pipeline.data.positions import nth_unexcluded_grouped
from pipeline.features.factors import PREFIX, preference, user_matrix
from pipeline.lists.personal import Personal, population_liking
from pipeline.lists.ranking import cluster_order, popular_order
from pipeline.params import PersonalOptions

CHUNK = 1 << 22  # ratings per step of the chunked per-user counts


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
    personal: Personal | None = None  # the personal recommender; None: the favorite cluster

    @classmethod
    def from_movies(
        cls, movies: pd.DataFrame, k: int, depth: int, options: PersonalOptions | None = None
    ) -> Catalog:
        """With `options` and the movies' factor columns, the personal recommender makes lists."""
        movies = movies.sort_values("movieId", ignore_index=True)
        cluster = movies["cluster"].to_numpy(np.int64)
        ranked = cluster_order(movies)
        start = np.searchsorted(cluster[ranked], np.arange(k + 1))
        rank_in_cluster = np.empty(len(movies), np.int64)
        rank_in_cluster[ranked] = np.arange(len(movies)) - start[cluster[ranked]]
        popular = popular_order(movies)
        factors = movies.filter(regex=f"^{PREFIX}\\d+$")
        personal = None
        if options is not None and factors.shape[1]:
            liked = population_liking(movies["n_ratings"], movies["avg_rating"])
            personal = Personal.build(factors.to_numpy(), cluster, popular, k, options, liked)
        return cls(
            movies["movieId"].to_numpy(np.uint32),
            cluster,
            movies["score"].to_numpy(np.float64),
            k,
            depth,
            ranked,
            start,
            rank_in_cluster,
            popular,
            personal,
        )


def load_catalog(folder: VersionFolder) -> Catalog:
    params = folder.params()
    movies = pd.read_parquet(folder.movies)
    return Catalog.from_movies(movies, params.k, params.stored_depth, params.personal_options)


def user_ids(folder: VersionFolder) -> np.ndarray:
    column = pq.read_table(folder.ratings, columns=["userId"])["userId"]
    return np.unique(column.to_numpy())


def read_user_ratings(folder: VersionFolder, user_lo: int, user_hi: int) -> pd.DataFrame:
    """Ratings of users in [user_lo, user_hi]; row groups outside the range are not read."""
    return pd.read_parquet(
        folder.ratings, filters=[("userId", ">=", user_lo), ("userId", "<=", user_hi)]
    )


@dataclass
class Rated:
    """Ratings as positions: a code per user (0..n-1, by id), the users, catalogue positions,
    the rating values."""

    codes: np.ndarray
    users: np.ndarray
    movie: np.ndarray
    rating: np.ndarray

    @classmethod
    def index(cls, ratings: pd.DataFrame, catalog: Catalog) -> Rated:
        """Ratings of movies the catalogue lacks (added after the version was trained) are
        left out: those movies join at the next retrain."""
        movie = positions_of(catalog.movie_ids, ratings["movieId"].to_numpy())
        user, rating = ratings["userId"].to_numpy(), ratings["rating"].to_numpy()
        known = movie >= 0
        if not known.all():
            movie, user, rating = movie[known], user[known], rating[known]
        codes, users = group_codes(user)
        return cls(codes, users.astype(np.uint32), movie, rating)


def cluster_counts(rated: Rated, catalog: Catalog) -> np.ndarray:
    """Users x clusters: how many movies each user rated in each cluster.

    Counted a chunk of ratings at a time: the flat (user, cluster) cells of all ratings at once
    would be two more arrays the size of the ratings."""
    n, k = len(rated.users), catalog.k
    counts = np.zeros(n * k, np.int64)
    for lo in range(0, len(rated.codes), CHUNK):
        flat = rated.codes[lo : lo + CHUNK] * k
        flat += catalog.cluster[rated.movie[lo : lo + CHUNK]]
        counts += np.bincount(flat, minlength=n * k)
    return counts.reshape(n, k)


def favorites(ratings: pd.DataFrame, catalog: Catalog) -> pd.DataFrame:
    """Each user's favorite cluster by the spec's rule: the cluster with most of the user's
    rated movies, ties to the lowest id (`n_c*`: the counts).

    The personal recommender also ranks a user's clusters by how much the user liked the movies
    rated there (summed preference, the `w_c*` columns) and draws from the best of those.
    """
    return _user_clusters(Rated.index(ratings, catalog), catalog).favorites


@dataclass
class UserClusters:
    """Favorites; with the personal recommender also each user's top clusters and the
    users x movies preference matrix they were weighted by."""

    favorites: pd.DataFrame
    top: np.ndarray | None = None
    preferences: sp.csr_matrix | None = None


def _user_clusters(
    rated: Rated, catalog: Catalog, preferences: sp.csr_matrix | None = None
) -> UserClusters:
    users, counts = rated.users, cluster_counts(rated, catalog)
    frame = pd.DataFrame(
        {
            "userId": users,
            "favorite_cluster": counts.argmax(axis=1),
            "n_ratings": counts.sum(axis=1),
        }
    )
    columns = [pd.DataFrame(counts, columns=[f"n_c{c}" for c in range(catalog.k)])]
    personal = catalog.personal
    if personal is None:
        return UserClusters(pd.concat([frame, *columns], axis=1))
    matrix = preferences
    if matrix is None:
        n = len(users)
        liking = preference(rated.codes, rated.rating, n)
        matrix = user_matrix(rated.codes, rated.movie, liking, n, len(catalog.movie_ids))
    liked = _liked_per_cluster(matrix, catalog)
    top = personal.top_clusters(liked if personal.options.cluster_weighting == "rating" else counts)
    columns.append(pd.DataFrame(liked, columns=[f"w_c{c}" for c in range(catalog.k)]))
    return UserClusters(pd.concat([frame, *columns], axis=1), top, matrix)


def _liked_per_cluster(matrix: sp.csr_matrix, catalog: Catalog) -> np.ndarray:
    """Users x clusters summed preference, added in the matrix's canonical (batch-free) order.

    The product with the movies' one-hot clusters adds each row's entries in order, one row
    at a time, and needs no array the size of the ratings."""
    one_hot = np.eye(catalog.k)[catalog.cluster]
    return np.asarray(matrix @ one_hot)


SOURCES = ("cluster", "popular")


def _nth_free(
    seen_user: np.ndarray, seen_slot: np.ndarray, users: np.ndarray, wanted: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The first `wanted[i]` slots not seen by `users[i]`, as (user, slot) pairs in user order."""
    user = np.repeat(users, wanted)
    return user, nth_unexcluded_grouped(seen_user, seen_slot, user, offsets_in_runs(wanted))


def _best_in_favorite(
    catalog: Catalog, rated: Rated, favorite: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Every user's best unseen movies of their favorite cluster, all clusters in one pass.

    Only ratings inside the user's own favorite cluster can block a slot, so only those are kept.
    """
    inside = catalog.cluster[rated.movie] == favorite[rated.codes]
    users = np.arange(len(favorite))
    user, slot = _nth_free(
        rated.codes[inside],
        catalog.rank_in_cluster[rated.movie[inside]],
        users,
        np.full(len(users), catalog.depth, np.int64),
    )
    start = catalog.cluster_start[favorite[user]]
    ok = slot < catalog.cluster_start[favorite[user] + 1] - start
    return user[ok], catalog.ranked[start[ok] + slot[ok]]


def _popular_unpicked(
    catalog: Catalog, rated: Rated, user: np.ndarray, movie: np.ndarray, short: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Users whose clusters ran out: the most popular movies they neither rated nor got yet.

    A user is short only once every movie of their clusters is rated or picked, so this is the
    most popular unseen movies of other clusters.
    """
    is_short = np.zeros(len(rated.users), dtype=bool)
    is_short[short] = True
    theirs, picked = is_short[rated.codes], is_short[user]
    slot_of = np.empty(len(catalog.movie_ids), np.int64)
    slot_of[catalog.popular] = np.arange(len(catalog.popular))
    wanted = catalog.depth - np.bincount(user, minlength=len(rated.users))[short]
    found, slot = _nth_free(
        np.concatenate([rated.codes[theirs], user[picked]]),
        slot_of[np.concatenate([rated.movie[theirs], movie[picked]])],
        short,
        wanted,
    )
    ok = slot < len(catalog.popular)
    return found[ok], catalog.popular[slot[ok]]


def _ranks(user: np.ndarray, n_users: int) -> np.ndarray:
    """1, 2, ... within each user's run of `user` (ascending user rows), as int32."""
    rank = offsets_in_runs(np.bincount(user, minlength=n_users), np.int32)
    rank += 1
    return rank


def recommend_users(
    ratings: pd.DataFrame, catalog: Catalog, preferences: sp.csr_matrix | None = None
) -> UserLists:
    """Favorites and, per user, a list of `depth` unseen movies.

    `preferences`: the `pipeline.features.factors.preference_matrix` of these same ratings over the
    catalogue's movies, when the run has it already (the factors were fitted on it).

    Favorite-cluster recommender: the best-scored movies of the favorite cluster (`score`: the
    movie's Bayesian score). Personal recommender: the movies of the user's top clusters that
    score highest for this user (`pipeline.lists.personal`; `score`: that personal score). When the
    clusters run out, the list continues with the most popular unseen movies (source "popular").
    """
    rated = Rated.index(ratings, catalog)
    clusters = _user_clusters(rated, catalog, preferences)
    favorite = clusters.favorites["favorite_cluster"].to_numpy(np.int64)
    if clusters.top is None:
        user, movie = _best_in_favorite(catalog, rated, favorite)
        score = catalog.score[movie]
    else:
        user, movie, score = catalog.personal.lists(
            clusters.preferences, clusters.top, catalog.cluster, catalog.depth
        )
    source = np.zeros(len(user), np.int8)
    got = np.bincount(user, minlength=len(favorite))
    short = np.flatnonzero(got < catalog.depth)
    if len(short):
        more_user, more_movie = _popular_unpicked(catalog, rated, user, movie, short)
        order = np.argsort(np.concatenate([user, more_user]), kind="stable")
        user = np.concatenate([user, more_user])[order]
        movie = np.concatenate([movie, more_movie])[order]
        score = np.concatenate([score, catalog.score[more_movie]])[order]
        source = np.concatenate([source, np.ones(len(more_user), np.int8)])[order]
    out = pd.DataFrame({
        "userId": rated.users[user],
        "rank": _ranks(user, len(favorite)),
        "movieId": catalog.movie_ids[movie],
        "score": score,
        "cluster": catalog.cluster[movie].astype(np.int32),
        "source": pd.Categorical.from_codes(source, SOURCES),
    }, copy=False)  # fmt: skip
    return UserLists(clusters.favorites, out)
