"""The methods a split's lists come from: the baselines and the service's recommenders."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD

from pipeline.data.indexing import positions_of
from pipeline.evaluation.metrics import LIST_LENGTH, ndcg_gain
from pipeline.evaluation.protocols import Holdout, holdout_scores
from pipeline.lists.personal import top_per_row
from pipeline.lists.ranking import popular_order
from pipeline.params import FAVORITE_CLUSTER, PERSONAL
from pipeline.run import Built

SCORE_BLOCK = 1 << 24  # users x movies scores held at once by the dense baselines


def _rating_matrix(ratings: pd.DataFrame, users: np.ndarray, movies: np.ndarray) -> sp.csr_matrix:
    """`users` x `movies` raw ratings; ratings of other users are left out."""
    row = positions_of(users, ratings["userId"].to_numpy())
    mine = row >= 0
    column = positions_of(movies, ratings["movieId"].to_numpy()[mine])
    values = ratings["rating"].to_numpy(np.float64)[mine]
    return sp.csr_matrix((values, (row[mine], column)), shape=(len(users), len(movies)))


def _dense_lists(
    holdout: Holdout, scores: Callable[[np.ndarray], np.ndarray], n: int = LIST_LENGTH
) -> pd.DataFrame:
    """Top-n unseen movies per evaluated user from a users x movies score function.

    `scores(rows)` scores rows of `holdout.users`; -inf marks movies a method will not offer.
    Users are scored in chunks, so memory stays bounded on large catalogues.
    """
    movies = holdout.train.movies["movieId"].to_numpy()
    seen = _rating_matrix(holdout.train.ratings, holdout.users, movies)
    chunk = max(1, SCORE_BLOCK // len(movies))
    frames = []
    for lo in range(0, len(holdout.users), chunk):
        rows = np.arange(lo, min(lo + chunk, len(holdout.users)))
        block = np.array(np.broadcast_to(scores(rows), (len(rows), len(movies))), np.float64)
        part = seen[rows]
        block[np.repeat(np.arange(len(rows)), np.diff(part.indptr)), part.indices] = -np.inf
        index, value = top_per_row(block, n)
        ok = np.isfinite(value)
        frames.append(pd.DataFrame({
            "userId": np.broadcast_to(holdout.users[rows][:, None], ok.shape)[ok],
            "rank": np.broadcast_to(np.arange(1, index.shape[1] + 1), ok.shape)[ok],
            "movieId": movies[index[ok]],
        }))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def _popularity_rank(built: Built) -> np.ndarray:
    rank = np.empty(len(built.movies), np.float64)
    rank[popular_order(built.movies)] = np.arange(len(built.movies))
    return rank


def _favorite_mask(holdout: Holdout, built: Built) -> Callable[[np.ndarray], np.ndarray]:
    """rows -> rows x movies: True inside each user's favorite cluster (the spec's rule)."""
    fav = built.users.favorites
    at = positions_of(fav["userId"].to_numpy(), holdout.users)
    favorite = np.where(at >= 0, fav["favorite_cluster"].to_numpy()[at], -1)
    cluster = built.movies["cluster"].to_numpy()
    return lambda rows: cluster[None, :] == favorite[rows, None]


def _random(holdout: Holdout) -> pd.DataFrame:
    rng = np.random.default_rng(holdout.params.random_state)
    n_movies = len(holdout.train.movies)
    return _dense_lists(holdout, lambda rows: rng.random((len(rows), n_movies)))


def _popular(holdout: Holdout) -> pd.DataFrame:
    rank = _popularity_rank(holdout.recommender(FAVORITE_CLUSTER))
    return _dense_lists(holdout, lambda rows: -rank)


def _spec_random(holdout: Holdout) -> pd.DataFrame:
    """The spec's `.sample(n)` from the favorite cluster, seeded, without rated movies."""
    built = holdout.recommender(FAVORITE_CLUSTER)
    inside = _favorite_mask(holdout, built)
    rng = np.random.default_rng(holdout.params.random_state)
    return _dense_lists(
        holdout,
        lambda rows: np.where(inside(rows), rng.random((len(rows), len(built.movies))), -np.inf),
    )


def _cluster_popular(holdout: Holdout) -> pd.DataFrame:
    built = holdout.recommender(FAVORITE_CLUSTER)
    inside, rank = _favorite_mask(holdout, built), _popularity_rank(built)
    return _dense_lists(holdout, lambda rows: np.where(inside(rows), -rank, -np.inf))


def _svd(holdout: Holdout) -> pd.DataFrame:
    """Truncated SVD of the raw users x movies rating matrix; a user's scores are r V V^T."""
    ratings, movies = holdout.train.ratings, holdout.train.movies["movieId"].to_numpy()
    everyone = _rating_matrix(ratings, np.unique(ratings["userId"].to_numpy()), movies)
    svd = TruncatedSVD(holdout.params.factors, random_state=holdout.params.random_state)
    factors = svd.fit(everyone).components_.T
    mine = _rating_matrix(ratings, holdout.users, movies)
    return _dense_lists(holdout, lambda rows: (mine[rows] @ factors) @ factors.T)


@dataclass(frozen=True)
class Method:
    description: str
    lists: Callable[[Holdout], pd.DataFrame]


def _service_lists(name: str) -> Callable[[Holdout], pd.DataFrame]:
    return lambda holdout: holdout.recommender(name).users.recommendations


BASELINES: dict[str, Method] = {
    "random": Method("uniformly random unseen movies (seeded)", _random),
    "popular": Method("most rated unseen movies", _popular),
    "spec-random": Method(
        "the spec's literal method: a seeded random sample of the favorite cluster", _spec_random
    ),
    "cluster-popular": Method("the favorite cluster's most rated movies", _cluster_popular),
    "svd": Method(
        "truncated SVD of the raw rating matrix (as many factors as the personal recommender)",
        _svd,
    ),
}


RECOMMENDER_METHODS: dict[str, Method] = {
    FAVORITE_CLUSTER: Method(
        "the service with --recommender favorite-cluster: favorite cluster by Bayesian score",
        _service_lists(FAVORITE_CLUSTER),
    ),
    PERSONAL: Method(
        "the service's default: the user's best clusters, ranked by a personal score",
        _service_lists(PERSONAL),
    ),
}
METHODS = BASELINES | RECOMMENDER_METHODS
PAIRED = ("popular", "svd")  # baselines the default's per-user NDCG is compared with


def method_lists(holdout: Holdout, methods: Sequence[str]) -> dict[str, pd.DataFrame]:
    return {name: METHODS[name].lists(holdout) for name in methods}


def evaluate(holdout: Holdout, methods: Sequence[str] = tuple(METHODS)) -> dict[str, dict]:
    """Metrics per method, in the order given."""
    return all_scores(holdout, method_lists(holdout, methods))


def all_scores(holdout: Holdout, lists: dict[str, pd.DataFrame]) -> dict[str, dict]:
    return {name: holdout_scores(holdout, recs) for name, recs in lists.items()}


def paired_gains(holdout: Holdout, lists: dict[str, pd.DataFrame]) -> dict[str, np.ndarray]:
    """Per evaluated user, the default's NDCG minus that of each baseline of PAIRED scored."""
    return {
        name: ndcg_gain(lists[PERSONAL], lists[name], holdout.relevant)
        for name in PAIRED
        if name in lists
    }
