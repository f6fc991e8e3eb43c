"""The personal recommender's per-user step: candidates from the user's best clusters, ranked.

A user's clusters are weighted by how much the user liked the movies they rated there
(`pipeline.factors.preference`), the best few supply the candidates, and candidates are ranked
by the dot product of the user's folded-in embedding with each movie's (damped) factors. Only
the user's own ratings enter, so any subset of users gets the lists it would get in a batch.
"""

from __future__ import annotations

import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from pipeline.params import PersonalOptions

USER_CHUNK = 4096  # users scored together; bounds the score blocks to a few tens of MB
WORKERS = os.cpu_count() or 1
GRID = 2.0**20  # scores are exact on this grid, so BLAS summation order cannot change a list


class Picks(NamedTuple):
    """Recommended (user row, movie position, score) triples, each user's in rank order."""

    user: np.ndarray
    movie: np.ndarray
    score: np.ndarray


def _on_grid(x: np.ndarray) -> np.ndarray:
    return np.round(x * GRID) / GRID


def _unit_max(x: np.ndarray) -> np.ndarray:
    """Rows scaled so their largest magnitude is 1 (zero rows stay zero): values fit the grid."""
    peak = np.abs(x).max(axis=1, keepdims=True) if x.shape[1] else np.zeros((len(x), 1))
    return np.divide(x, peak, out=np.zeros_like(x), where=peak > 0)


@dataclass
class Personal:
    """Movie-side data of the personal recommender, indexed by catalogue position."""

    factors: np.ndarray  # movies x d (float64): folds a user's preferences into the embedding
    scoring: np.ndarray  # movies x d, damped and on the grid: what user vectors are scored against
    candidates: np.ndarray  # positions grouped by cluster, most rated first
    candidate_start: np.ndarray  # where each cluster begins in `candidates` (k + 1 entries)
    slot: np.ndarray  # position -> index inside its cluster's candidates, -1 when not one
    options: PersonalOptions

    @classmethod
    def build(
        cls,
        factors: np.ndarray,
        cluster: np.ndarray,
        popular: np.ndarray,
        k: int,
        options: PersonalOptions,
    ) -> Personal:
        """`popular`: all positions by popularity. Unrated movies (zero factors) never qualify."""
        factors = np.asarray(factors, np.float64)
        norm = np.linalg.norm(factors, axis=1, keepdims=True)
        damped = np.divide(
            factors, norm**options.damping, out=np.zeros(factors.shape), where=norm > 0
        )
        rated = popular[norm[popular, 0] > 0]
        grouped = rated[np.argsort(cluster[rated], kind="stable")]
        start = np.searchsorted(cluster[grouped], np.arange(k + 1))
        rank = np.arange(len(grouped)) - start[cluster[grouped]]
        keep = rank < options.candidates
        candidates = grouped[keep]
        slot = np.full(len(cluster), -1, np.int64)
        slot[candidates] = rank[keep]
        return cls(
            factors,
            _on_grid(damped),
            candidates,
            np.searchsorted(cluster[candidates], np.arange(k + 1)),
            slot,
            options,
        )

    def top_clusters(self, weights: np.ndarray) -> np.ndarray:
        """Users x C: each user's clusters by weight, heaviest first, ties to the lowest id."""
        c = min(self.options.user_clusters, weights.shape[1])
        return np.argsort(-weights, axis=1, kind="stable")[:, :c]

    def lists(
        self, matrix: sp.csr_matrix, top: np.ndarray, cluster: np.ndarray, depth: int
    ) -> Picks:
        """Up to `depth` unseen movies per user, best first.

        `matrix`: users x movies preferences (every rated movie is an entry, zeros included);
        `top`: the users' clusters from `top_clusters`. Chunks of users run on WORKERS threads
        (numpy releases the GIL), each product on one BLAS thread.
        """
        n = matrix.shape[0]
        with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(WORKERS) as pool:
            parts = list(pool.map(
                lambda lo: self._chunk(matrix, top, cluster, depth, lo, min(lo + USER_CHUNK, n)),
                range(0, n, USER_CHUNK),
            ))  # fmt: skip
        if not parts:
            return Picks(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0))
        return Picks(*(np.concatenate(column) for column in zip(*parts, strict=True)))

    def _chunk(
        self,
        matrix: sp.csr_matrix,
        top: np.ndarray,
        cluster: np.ndarray,
        depth: int,
        lo: int,
        hi: int,
    ) -> Picks:
        rows = matrix[lo:hi]
        users = _on_grid(_unit_max(rows @ self.factors))
        mine = top[lo:hi]
        n, width = len(mine), mine.shape[1] * depth
        score = np.full((n, width), -np.inf)
        movie = np.full((n, width), -1, np.int64)
        blocked = _seen_candidates(rows, mine, cluster, self.slot, len(self.candidate_start) - 1)
        for c in np.unique(mine):
            user, j = np.nonzero(mine == c)
            members = self.candidates[self.candidate_start[c] : self.candidate_start[c + 1]]
            block = users[user] @ self.scoring[members].T
            at = np.searchsorted(user, blocked[c][0])
            block[at, blocked[c][1]] = -np.inf
            best, value = top_per_row(block, depth)
            cols = j[:, None] * depth + np.arange(best.shape[1])
            score[user[:, None], cols] = value
            movie[user[:, None], cols] = members[best]
        order = np.argsort(-score, axis=1, kind="stable")[:, :depth]
        score = np.take_along_axis(score, order, axis=1)
        movie = np.take_along_axis(movie, order, axis=1)
        ok = np.isfinite(score)
        user = np.broadcast_to(np.arange(lo, hi)[:, None], ok.shape)
        return Picks(user[ok], movie[ok], score[ok])


def _seen_candidates(
    rows: sp.csr_matrix, top: np.ndarray, cluster: np.ndarray, slot: np.ndarray, k: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per cluster: (chunk row, candidate slot) of rated movies among the rows' candidates."""
    owner = np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr))
    movie = rows.indices
    candidate = slot[movie] >= 0
    owner, movie = owner[candidate], movie[candidate]
    c = cluster[movie]
    member = np.zeros((rows.shape[0], k), bool)
    np.put_along_axis(member, top, True, axis=1)
    keep = member[owner, c]
    owner, movie, c = owner[keep], movie[keep], c[keep]
    order = np.argsort(c, kind="stable")
    owner, movie, c = owner[order], movie[order], c[order]
    bounds = np.searchsorted(c, np.arange(k + 1))
    return [(owner[a:b], slot[movie[a:b]]) for a, b in itertools.pairwise(bounds)]


def top_per_row(block: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the column indices and values of the `depth` highest values, best first.

    Equal values are ordered by column (the more popular candidate first); which of several
    equal values at the cut-off stay is the selection's choice, a function of the row alone.
    """
    width = block.shape[1]
    if width > depth:
        index = np.argpartition(block, width - depth, axis=1)[:, width - depth :]
    else:
        index = np.broadcast_to(np.arange(block.shape[1]), block.shape)
    value = np.take_along_axis(block, index, axis=1)
    order = np.lexsort((index, -value), axis=1)
    return np.take_along_axis(index, order, axis=1), np.take_along_axis(value, order, axis=1)
