"""Collaborative movie embeddings: what the people who liked a movie also liked, in a few numbers.

The matrix factorized is users x movies of *preference*, each rating on its user's own scale, so
a generous rater's 4 and a harsh rater's 4 do not mean the same. Movies nobody rated get a zero
vector; a user is placed in the same space from their own ratings alone (fold-in), so one user
can be refreshed without the others.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.utils.extmath import randomized_svd

from pipeline.data.indexing import group_codes, positions_of
from pipeline.features.scaling import user_zscores
from pipeline.process.blas import blas_threads

PREFIX = "factor_"
SVD_ITERATIONS = 2  # 2 to 5 gave lists of the same quality on ml-latest-small; 2 costs least


def factor_columns(n: int) -> list[str]:
    return [f"{PREFIX}{i}" for i in range(n)]


def preference(codes: np.ndarray, rating: np.ndarray, n_users: int) -> np.ndarray:
    """max(0, 1 + z) with z the rating's z-score among its user's ratings.

    Above-average ratings weigh more, and a rating more than one standard deviation below the
    user's mean weighs nothing.
    """
    liking = user_zscores(codes, rating, n_users)
    liking += 1.0
    return np.maximum(liking, 0.0, out=liking)


def user_matrix(
    codes: np.ndarray, movie: np.ndarray, values: np.ndarray, n_users: int, n_movies: int
) -> sp.csr_matrix:
    """Users x movies CSR in canonical form (sorted columns per row), zeros kept as entries.

    Canonical order makes every row's sums run in the same order in any batch. Cleaned ratings
    come sorted by user and movie, one per pair, so the common case needs no sort.
    """
    values = np.asarray(values, np.float64)
    if _canonical(codes, movie):
        indptr = np.zeros(n_users + 1, np.int64)
        np.cumsum(np.bincount(codes, minlength=n_users), out=indptr[1:])
        return sp.csr_matrix((values, movie, indptr), shape=(n_users, n_movies))
    matrix = sp.csr_matrix((values, (codes, movie)), shape=(n_users, n_movies))
    matrix.sum_duplicates()
    return matrix


def _canonical(codes: np.ndarray, movie: np.ndarray) -> bool:
    """True when (user, movie) pairs are strictly ascending: CSR order, no duplicates.

    Compared column by column, so the check needs only boolean temporaries."""
    same_user = codes[1:] == codes[:-1]
    ascending = movie[1:] > movie[:-1]
    ascending &= same_user
    ascending |= codes[1:] > codes[:-1]
    return bool(ascending.all())


def item_factors(matrix: sp.csr_matrix, dim: int, random_state: int) -> np.ndarray:
    """Movies x dim right singular vectors (rows of unrated movies are zero), float32.

    Truncated to what the matrix can support, so tiny data sets still get a (narrower) space.
    One BLAS thread: the sparse products dominate, and a second thread only spins when the
    pipeline's writer thread (or anything else) holds the other core.
    """
    dim = min(dim, min(matrix.shape) - 1)
    if dim < 1:
        return np.zeros((matrix.shape[1], 0), np.float32)
    with blas_threads(1):
        _, _, vt = randomized_svd(
            matrix.astype(np.float32), dim, n_iter=SVD_ITERATIONS, random_state=random_state
        )
    return vt.T.astype(np.float32)


def preference_matrix(ratings: pd.DataFrame, movie_ids: np.ndarray) -> sp.csr_matrix:
    """Users (ascending id) x `movie_ids` preferences of all ratings, every rated movie an entry.

    The factors are fitted on it, and the per-user stage of the same run reuses it."""
    codes, users = group_codes(ratings["userId"])
    movie = positions_of(movie_ids, ratings["movieId"].to_numpy())
    liking = preference(codes, ratings["rating"].to_numpy(), len(users))
    return user_matrix(codes, movie, liking, len(users), len(movie_ids))


def movie_factors(
    movies: pd.DataFrame, matrix: sp.csr_matrix, dim: int, random_state: int
) -> pd.DataFrame:
    """`movies` with `factor_0..` columns: the embedding of each movie from the
    `preference_matrix` of all ratings over `movies`' ids."""
    factors = item_factors(matrix, dim, random_state)
    columns = pd.DataFrame(factors, columns=factor_columns(factors.shape[1]), index=movies.index)
    return pd.concat([movies, columns], axis=1)
