"""How a top-n list scores against held-out ratings: precision, recall, NDCG, hit rate,
coverage, and paired differences over users."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

LIST_LENGTH = 10


def user_ndcg(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    """Per user NDCG with binary gains and an ideal of min(n_relevant, n) hits on top."""
    n = hits.shape[1]
    discount = 1.0 / np.log2(np.arange(2, n + 2))
    ideal = np.cumsum(discount)[np.minimum(n_relevant, n) - 1]
    return (hits * discount).sum(axis=1) / ideal


def list_metrics(hits: np.ndarray, n_relevant: np.ndarray) -> dict[str, float]:
    """Means over users of precision, recall, NDCG and hit rate at the list length n.

    `hits`: users x n, True where the list's i-th movie is relevant (a short list is padded
    with False); `n_relevant`: each user's relevant movies (at least one). Recall divides by
    all of them.
    """
    found = hits.sum(axis=1)
    return {
        "precision": float(np.mean(found / hits.shape[1])),
        "recall": float(np.mean(found / n_relevant)),
        "ndcg": float(np.mean(user_ndcg(hits, n_relevant))),
        "hit_rate": float(np.mean(found > 0)),
    }


def coverage(movie_ids: np.ndarray, catalogue_size: int) -> float:
    """Share of the catalogue that appears in at least one list."""
    return len(np.unique(movie_ids)) / catalogue_size


def _pair_key(users: pd.Series, movies: pd.Series) -> np.ndarray:
    return (users.to_numpy().astype(np.int64) << 32) | movies.to_numpy().astype(np.int64)


class Hits(NamedTuple):
    """Lists against relevant pairs: users x n hits, relevant counts, the rows scored."""

    hits: np.ndarray
    n_relevant: np.ndarray
    top: pd.DataFrame


def list_hits(recs: pd.DataFrame, relevant: pd.DataFrame, n: int = LIST_LENGTH) -> Hits:
    """Lists (userId, rank 1-based, movieId) against relevant (userId, movieId) pairs, one
    row per user with a relevant pair (ascending); a user without a list has no hits."""
    users, n_relevant = np.unique(relevant["userId"].to_numpy(), return_counts=True)
    top = recs[(recs["rank"] <= n) & recs["userId"].isin(users)]
    hits = np.zeros((len(users), n), dtype=bool)
    row = np.searchsorted(users, top["userId"].to_numpy())
    hits[row, top["rank"].to_numpy() - 1] = np.isin(
        _pair_key(top["userId"], top["movieId"]),
        _pair_key(relevant["userId"], relevant["movieId"]),
    )
    return Hits(hits, n_relevant, top)


def score_lists(
    recs: pd.DataFrame, relevant: pd.DataFrame, catalogue_size: int, n: int = LIST_LENGTH
) -> dict[str, float]:
    """Every user with a relevant pair counts; one without a list scores zero."""
    found = list_hits(recs, relevant, n)
    return list_metrics(found.hits, found.n_relevant) | {
        "coverage": coverage(found.top["movieId"].to_numpy(), catalogue_size)
    }


def ndcg_gain(recs: pd.DataFrame, against: pd.DataFrame, relevant: pd.DataFrame) -> np.ndarray:
    """Per evaluated user, the NDCG of `recs` minus that of `against`."""
    mine, theirs = list_hits(recs, relevant), list_hits(against, relevant)
    return user_ndcg(mine.hits, mine.n_relevant) - user_ndcg(theirs.hits, theirs.n_relevant)


class Paired(NamedTuple):
    """A paired difference over users: its mean, the mean's standard error, the users."""

    mean: float
    se: float
    users: int

    @classmethod
    def of(cls, differences: np.ndarray) -> Paired:
        n = len(differences)
        se = float(np.std(differences, ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
        return cls(float(np.mean(differences)), se, n)
