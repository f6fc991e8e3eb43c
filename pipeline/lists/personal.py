"""The personal recommender's per-user step: candidates from the user's best clusters, ranked.

A user's clusters are weighted by how much the user liked the movies they rated there
(`pipeline.features.factors.preference`), the best few supply the candidates, and candidates are
ranked by the dot product of the user's folded-in embedding with each movie's (damped) factors.

A few ratings make that score noisy, so a list knows how much it knows: with n ratings, the
population's taste weighs doubt = prior_ratings / (n + prior_ratings). The list opens with
round(opening * doubt) movies ranked by the personal score blended with the population's,
(1 - doubt) * personal + doubt * population: safe picks where most of the accuracy of a short
list lies. They come from every cluster, since a few ratings also say little about which
clusters are the user's: the user's clusters offer all their candidates, each other cluster the
`reach` movies the population likes best (on the tuning splits, 20 serve new users as well as
all 500; known users keep their accuracy from 200 on). The rest, from the user's clusters,
follows the personal score with the popular movies' factors damped by a further exploration *
doubt, so a new user's list does not repeat everyone's favourites. Both fade as ratings come in
and stop with the opening (above prior_ratings * (2 * opening - 1) ratings): from there on the
list is the personal one.

The population's taste comes from the catalogue's own columns, and otherwise only the user's
ratings enter, so any subset of users gets the lists it would get in a batch.
"""

from __future__ import annotations

import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from pipeline.params import PersonalOptions
from pipeline.process.blas import blas_threads
from pipeline.process.memory import release_freed_memory

USER_CHUNK = 4096  # users scored together; bounds the score blocks to a few tens of MB
WORKERS = os.cpu_count() or 1
GRID = 2.0**20  # scores are exact on this grid, so BLAS summation order cannot change a list


class Picks(NamedTuple):
    """Recommended (user row, movie position, score) triples, each user's in rank order."""

    user: np.ndarray
    movie: np.ndarray
    score: np.ndarray


def population_liking(n_ratings: np.ndarray, avg_rating: np.ndarray) -> np.ndarray:
    """Per movie, its ratings weighted the way a user's preference weighs one, max(0, 1 + z),
    with z how far the movie's mean rating lies above the mean of all ratings, in stars.

    Weighting the movies' factors by it gives the population's taste. It needs only columns
    the catalogue keeps, so a worker refreshing one user derives the batch's exact values.
    """
    n = np.asarray(n_ratings, np.float64)
    avg = np.nan_to_num(np.asarray(avg_rating, np.float64))
    mean = (n * avg).sum() / max(n.sum(), 1.0)
    return n * np.maximum(0.0, 1.0 + avg - mean)


def _on_grid(x: np.ndarray) -> np.ndarray:
    y = x * GRID  # in place from here: a score block is tens of MB
    np.rint(y, out=y)
    y /= GRID
    return y


def _unit_max(x: np.ndarray) -> np.ndarray:
    """Rows scaled so their largest magnitude is 1 (zero rows stay zero): values fit the grid."""
    peak = np.abs(x).max(axis=1, keepdims=True) if x.shape[1] else np.zeros((len(x), 1))
    return np.divide(x, peak, out=np.zeros_like(x), where=peak > 0)


class Shortlist(NamedTuple):
    """Movie positions grouped by cluster, in a given order inside each cluster."""

    members: np.ndarray
    start: np.ndarray  # where each cluster begins in `members` (k + 1 entries)
    slot: np.ndarray  # position -> index inside its cluster's run, -1 when not a member

    @classmethod
    def of(cls, ranked: np.ndarray, cluster: np.ndarray, k: int, depth: int) -> Shortlist:
        """The first `depth` positions of each cluster in `ranked` order."""
        grouped = ranked[np.argsort(cluster[ranked], kind="stable")]
        start = np.searchsorted(cluster[grouped], np.arange(k + 1))
        rank = np.arange(len(grouped)) - start[cluster[grouped]]
        keep = rank < depth
        members = grouped[keep]
        slot = np.full(len(cluster), -1, np.int64)
        slot[members] = rank[keep]
        return cls(members, np.searchsorted(cluster[members], np.arange(k + 1)), slot)

    def of_cluster(self, c: int) -> np.ndarray:
        return self.members[self.start[c] : self.start[c + 1]]


@dataclass
class Personal:
    """Movie-side data of the personal recommender, indexed by catalogue position."""

    factors: np.ndarray  # movies x d (float64): folds a user's preferences into the embedding
    scoring: np.ndarray  # movies x d, damped and on the grid: what user vectors are scored against
    candidates: Shortlist  # per cluster, the most rated movies: what a list may offer
    favourites: Shortlist  # per cluster, the candidates the population likes best: the reach
    population: np.ndarray  # per movie, the population's score, on the scale of a user's
    log_norm: np.ndarray  # per movie, the log of its factors' norm (0 when unrated)
    options: PersonalOptions

    @classmethod
    def build(
        cls,
        factors: np.ndarray,
        cluster: np.ndarray,
        popular: np.ndarray,
        k: int,
        options: PersonalOptions,
        liked: np.ndarray,
    ) -> Personal:
        """`popular`: all positions by popularity; `liked`: `population_liking` per movie.
        Unrated movies (zero factors) never qualify."""
        factors = np.asarray(factors, np.float64)
        norm = np.linalg.norm(factors, axis=1, keepdims=True)
        damped = np.divide(
            factors, norm**options.damping, out=np.zeros(factors.shape), where=norm > 0
        )
        scoring = _on_grid(damped)
        # summed by numpy, not BLAS: the same in the batch and in a worker refreshing one user
        taste = _on_grid(_unit_max((liked[:, None] * factors).sum(axis=0, keepdims=True)))[0]
        rated = popular[norm[popular, 0] > 0]
        candidates = Shortlist.of(rated, cluster, k, options.candidates)
        population = scoring @ taste
        pool = candidates.members
        liked_first = pool[np.argsort(-population[pool], kind="stable")]
        return cls(
            factors,
            scoring,
            candidates,
            Shortlist.of(liked_first, cluster, k, options.reach),
            population,
            np.log(norm[:, 0], out=np.zeros(len(norm)), where=norm[:, 0] > 0),
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
        if n <= USER_CHUNK:  # a few users (a live refresh): threads would cost more than they save
            parts = [self._chunk(matrix, top, cluster, depth, 0, n)] if n else []
        else:

            def chunk(lo: int) -> Picks:
                return self._chunk(matrix, top, cluster, depth, lo, min(lo + USER_CHUNK, n))

            with blas_threads(1), ThreadPoolExecutor(WORKERS) as pool:
                parts = list(pool.map(chunk, range(0, n, USER_CHUNK)))
            release_freed_memory()  # the threads' heaps keep what their chunks freed
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
        doubt = self.options.doubt(np.diff(rows.indptr))  # every rated movie is an entry
        opening = np.floor(self.options.opening * doubt + 0.5).astype(np.int64)
        mine = top[lo:hi]
        k = len(self.candidates.start) - 1
        # as deep for every chunk: which of equal scores a selection keeps depends on its depth;
        # the user's clusters first (equal scores go to the heavier), then every other cluster
        head = _Best(len(mine), mine.shape[1] + k, self.options.opening if opening.any() else 0)
        rest = _Best(len(mine), mine.shape[1], depth)
        blocked = _seen_candidates(rows, mine, cluster, self.candidates.slot, k)
        for c in np.unique(mine):
            user, j = np.nonzero(mine == c)
            members = self.candidates.of_cluster(c)
            block = users[user] @ self.scoring[members].T
            at = np.searchsorted(user, blocked[c][0])
            block[at, blocked[c][1]] = -np.inf
            opens = opening[user] > 0
            if opens.any():
                weight, opened = doubt[user[opens], None], block[opens]
                blend = opened * (1 - weight)
                blend += weight * self.population[members]
                head.add(user[opens], j[opens], members, blend)
                if self.options.exploration:
                    further = (-self.options.exploration * weight) * self.log_norm[members]
                    opened *= np.exp(further, out=further)
                    block[opens] = _on_grid(opened)
            rest.add(user, j, members, block)
        movie, score = rest.ranked()
        if head.depth:
            if self.options.reach:
                self._reach(head, rows, users, doubt, opening, mine, cluster)
            movie, score = _open(head.ranked(), (movie, score), opening, depth)
        ok = np.isfinite(score)
        user = np.broadcast_to(np.arange(lo, hi)[:, None], ok.shape)
        return Picks(user[ok], movie[ok], score[ok])

    def _reach(
        self,
        head: _Best,
        rows: sp.csr_matrix,
        users: np.ndarray,
        doubt: np.ndarray,
        opening: np.ndarray,
        top: np.ndarray,
        cluster: np.ndarray,
    ) -> None:
        """Adds to `head` the opening's picks from the clusters that are not the user's: each
        one's `reach` favourites of the population, by the same blended score."""
        k = len(self.favourites.start) - 1
        opened = np.flatnonzero(opening > 0)
        every = np.broadcast_to(np.arange(k), (len(opened), k))
        blocked = _seen_candidates(rows[opened], every, cluster, self.favourites.slot, k)
        vectors, theirs = users[opened], top[opened]
        for c in range(k):
            away = np.flatnonzero((theirs != c).all(axis=1))
            members = self.favourites.of_cluster(c)
            if not len(away) or not len(members):
                continue
            blend = vectors[away] @ self.scoring[members].T
            seen_row, seen_slot = blocked[c]
            inside = np.isin(seen_row, away)
            blend[np.searchsorted(away, seen_row[inside]), seen_slot[inside]] = -np.inf
            weight = doubt[opened[away], None]
            blend *= 1 - weight
            blend += weight * self.population[members]
            head.add(opened[away], np.full(len(away), top.shape[1] + c), members, blend)


class _Best:
    """Per user, the `depth` best (movie, score) of each of the user's clusters, then overall."""

    def __init__(self, n: int, clusters: int, depth: int) -> None:
        self.depth = depth
        self.score = np.full((n, clusters * depth), -np.inf)
        self.movie = np.full((n, clusters * depth), -1, np.int64)

    def add(self, user: np.ndarray, j: np.ndarray, members: np.ndarray, block: np.ndarray) -> None:
        """`block`: rows `user` x the cluster's `members`; `j`: the cluster's place per user."""
        best, value = top_per_row(block, self.depth)
        cols = j[:, None] * self.depth + np.arange(best.shape[1])
        self.score[user[:, None], cols] = value
        self.movie[user[:, None], cols] = members[best]

    def ranked(self) -> tuple[np.ndarray, np.ndarray]:
        """(movie, score), users x depth, best first; empty places score -inf."""
        order = np.argsort(-self.score, axis=1, kind="stable")[:, : self.depth]
        return (
            np.take_along_axis(self.movie, order, axis=1),
            np.take_along_axis(self.score, order, axis=1),
        )


def _open(
    head: tuple[np.ndarray, np.ndarray],
    rest: tuple[np.ndarray, np.ndarray],
    opening: np.ndarray,
    depth: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Each user's first `opening` head movies, then the rest's movies not among them."""
    (head_movie, head_score), (movie, score) = head, rest
    opens = (np.arange(head_movie.shape[1]) < opening[:, None]) & np.isfinite(head_score)
    taken = np.where(opens, head_movie, -1)
    again = (movie[:, :, None] == taken[:, None, :]).any(axis=2)
    keep = np.concatenate([opens, np.isfinite(score) & ~again], axis=1)
    order = np.argsort(~keep, axis=1, kind="stable")[:, :depth]
    movie = np.take_along_axis(np.concatenate([head_movie, movie], axis=1), order, axis=1)
    score = np.take_along_axis(np.concatenate([head_score, score], axis=1), order, axis=1)
    return movie, np.where(np.take_along_axis(keep, order, axis=1), score, -np.inf)


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
        index = np.sort(np.argpartition(block, width - depth, axis=1)[:, width - depth :], axis=1)
    else:
        index = np.broadcast_to(np.arange(block.shape[1]), block.shape)
    value = np.take_along_axis(block, index, axis=1)
    # columns ascending, then a stable sort by value: lexsort's order at a fifth less CPU
    order = np.argsort(-value, axis=1, kind="stable")
    return np.take_along_axis(index, order, axis=1), np.take_along_axis(value, order, axis=1)
