"""Offline evaluation: hide each user's latest ratings, train on the rest, score top-10 lists.

Protocol: per user, ratings ordered by time (ties by movie id); the latest 20%, at least one,
are held out and the rest trains the whole pipeline. A held-out rating of 4.0 or more is
relevant; users with nothing relevant are skipped. Lists hold 10 movies the user did not rate in
training. The service's lists come from `pipeline.run.build` on the training split: the code
the service publishes, not a re-implementation of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD

from pipeline import plots
from pipeline.cleaning import CleanData, clean
from pipeline.indexing import group_codes, group_starts, positions_of
from pipeline.params import FAVORITE_CLUSTER, PERSONAL, RECOMMENDERS, PipelineParams
from pipeline.personal import top_per_row
from pipeline.ranking import popular_order
from pipeline.readers import read_dataset
from pipeline.run import Built, build

HOLDOUT = 0.2
RELEVANT = 4.0
LIST_LENGTH = 10
METRICS = ("precision", "recall", "ndcg", "hit_rate", "coverage")
SCORE_BLOCK = 1 << 24  # users x movies scores held at once by the dense baselines


def split_by_time(ratings: pd.DataFrame, fraction: float = HOLDOUT) -> np.ndarray:
    """True for held-out rows: per user the latest floor(fraction * n) ratings, at least one."""
    order = np.lexsort((
        ratings["movieId"].to_numpy(),
        ratings["timestamp"].to_numpy(),
        ratings["userId"].to_numpy(),
    ))  # fmt: skip
    user = ratings["userId"].to_numpy()[order]
    codes, _ = group_codes(user)
    size = np.bincount(codes)[codes]
    held_out = np.maximum(1, np.floor(size * fraction).astype(np.int64))
    position = np.arange(len(user)) - group_starts(user)
    mask = np.empty(len(user), dtype=bool)
    mask[order] = position >= size - held_out
    return mask


def list_metrics(hits: np.ndarray, n_relevant: np.ndarray) -> dict[str, float]:
    """Means over users of precision, recall, NDCG and hit rate at the list length n.

    `hits`: users x n, True where the list's i-th movie is relevant (a short list is padded
    with False); `n_relevant`: each user's relevant movies (at least one). Recall divides by
    all of them; NDCG has binary gains and an ideal of min(n_relevant, n) hits on top.
    """
    n = hits.shape[1]
    discount = 1.0 / np.log2(np.arange(2, n + 2))
    found = hits.sum(axis=1)
    ideal = np.cumsum(discount)[np.minimum(n_relevant, n) - 1]
    return {
        "precision": float(np.mean(found / n)),
        "recall": float(np.mean(found / n_relevant)),
        "ndcg": float(np.mean((hits * discount).sum(axis=1) / ideal)),
        "hit_rate": float(np.mean(found > 0)),
    }


def coverage(movie_ids: np.ndarray, catalogue_size: int) -> float:
    """Share of the catalogue that appears in at least one list."""
    return len(np.unique(movie_ids)) / catalogue_size


def _pair_key(users: pd.Series, movies: pd.Series) -> np.ndarray:
    return (users.to_numpy().astype(np.int64) << 32) | movies.to_numpy().astype(np.int64)


def score_lists(
    recs: pd.DataFrame, relevant: pd.DataFrame, catalogue_size: int, n: int = LIST_LENGTH
) -> dict[str, float]:
    """Lists (userId, rank 1-based, movieId) against relevant (userId, movieId) pairs.

    Every user with a relevant pair counts; one without a list scores zero.
    """
    users, n_relevant = np.unique(relevant["userId"].to_numpy(), return_counts=True)
    top = recs[(recs["rank"] <= n) & recs["userId"].isin(users)]
    hits = np.zeros((len(users), n), dtype=bool)
    row = np.searchsorted(users, top["userId"].to_numpy())
    hits[row, top["rank"].to_numpy() - 1] = np.isin(
        _pair_key(top["userId"], top["movieId"]),
        _pair_key(relevant["userId"], relevant["movieId"]),
    )
    return list_metrics(hits, n_relevant) | {
        "coverage": coverage(top["movieId"].to_numpy(), catalogue_size)
    }


@dataclass
class Holdout:
    """The training split, the relevant held-out pairs, and trained pipelines by recommender."""

    train: CleanData
    relevant: pd.DataFrame
    params: PipelineParams
    users: np.ndarray = field(init=False)  # evaluated users, ascending
    builds: dict[PipelineParams, Built] = field(default_factory=dict)
    build_seconds: dict[PipelineParams, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.users = np.unique(self.relevant["userId"].to_numpy())

    @classmethod
    def split(cls, data: CleanData, params: PipelineParams) -> Holdout:
        held = split_by_time(data.ratings)
        ratings = data.ratings
        train = CleanData(
            ratings[~held].reset_index(drop=True), data.movies, data.tags, data.report
        )
        relevant = ratings.loc[held & (ratings["rating"].to_numpy() >= RELEVANT)]
        return cls(train, relevant[["userId", "movieId"]].reset_index(drop=True), params)

    def built(self, params: PipelineParams) -> Built:
        """The pipeline trained on the split (once per parameter set)."""
        if params not in self.builds:
            start = time.perf_counter()
            self.builds[params] = build(self.train, params)
            self.build_seconds[params] = round(time.perf_counter() - start, 3)
        return self.builds[params]

    def recommender_params(self, name: str) -> PipelineParams:
        return replace(self.params, recommender=name)

    def recommender(self, name: str) -> Built:
        return self.built(self.recommender_params(name))


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


def evaluate(holdout: Holdout, methods: Sequence[str] = tuple(METHODS)) -> dict[str, dict]:
    """Metrics per method, in the order given."""
    catalogue = len(holdout.train.movies)
    return {
        name: score_lists(METHODS[name].lists(holdout), holdout.relevant, catalogue)
        for name in methods
    }


def _ablation_steps(k: int) -> list[tuple[str, Callable[[PipelineParams], PipelineParams]]]:
    """Each step adds one idea to the previous one; the last are references, not steps."""

    def personal(params: PipelineParams, **changes) -> PipelineParams:
        return replace(params, recommender=PERSONAL, personal=replace(params.personal, **changes))

    first = {"user_clusters": 1, "cluster_weighting": "count", "damping": 0.0}
    return [
        (
            "spec: favorite cluster by count, Bayesian score",
            lambda p: replace(p, recommender=FAVORITE_CLUSTER),
        ),
        (
            "personal score inside the spec's favorite cluster",
            lambda p: replace(personal(p, **first), factor_weight=0.0),
        ),
        ("+ clusters on embeddings and genres", lambda p: personal(p, **first)),
        (
            "+ favorite weighted by rating, not count",
            lambda p: personal(p, **first | {"cluster_weighting": "rating"}),
        ),
        ("+ second-best cluster", lambda p: personal(p, user_clusters=2, damping=0.0)),
        ("+ damping of popular movies' factors", lambda p: personal(p, user_clusters=2)),
        ("reference: three clusters", lambda p: personal(p, user_clusters=3)),
        ("reference: every cluster (no restriction)", lambda p: personal(p, user_clusters=k)),
        ("reference: 1000 candidates per cluster", lambda p: personal(p, candidates=1000)),
    ]


def ablation(holdout: Holdout) -> list[dict]:
    """The personal recommender built up step by step from the spec's method, each step scored
    (`build_seconds`: the pipeline's time for that step's parameters)."""
    catalogue = len(holdout.train.movies)
    rows = []
    for label, change in _ablation_steps(holdout.params.k):
        params = change(holdout.params)
        recs = holdout.built(params).users.recommendations
        scores = score_lists(recs, holdout.relevant, catalogue)
        rows.append({"step": label} | scores | {"build_seconds": holdout.build_seconds[params]})
    return rows


def bar_chart(results: dict[str, dict], path: Path) -> None:
    """Grouped bars: one group per method, one bar per metric."""
    names = list(results)
    width = 0.8 / len(METRICS)
    fig, ax = plots.figure(max(8, 1.4 * len(names)), 4.5)
    for i, metric in enumerate(METRICS):
        values = [results[name][metric] for name in names]
        ax.bar(np.arange(len(names)) + (i - (len(METRICS) - 1) / 2) * width, values, width,
               label=f"{metric}@{LIST_LENGTH}" if metric != "coverage" else metric)  # fmt: skip
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right")
    ax.set(ylabel="value", title=f"Top-{LIST_LENGTH} lists on held-out ratings")
    ax.legend(fontsize="small")
    plots.save(fig, path)


def run_evaluation(source: Path, baselines: Sequence[str], seed: int, with_ablation: bool) -> dict:
    """The whole evaluation of a MovieLens folder, as the report `evaluation.json` holds."""
    start = time.perf_counter()
    data = clean(read_dataset(source))
    holdout = Holdout.split(data, PipelineParams(random_state=seed, plots=False))
    methods = evaluate(holdout, [*baselines, *RECOMMENDERS])
    report = {
        "data_dir": str(Path(source).resolve()),
        "protocol": {
            "holdout": f"per user, the latest floor({HOLDOUT} * n) ratings, at least one",
            "order": "timestamp, then movieId",
            "relevant": f"held-out rating >= {RELEVANT}",
            "list_length": LIST_LENGTH,
            "seen": "lists exclude the user's training movies",
        },
        "counts": {
            "users": int(data.ratings["userId"].nunique()),
            "users_evaluated": len(holdout.users),
            "movies": len(data.movies),
            "train_ratings": len(holdout.train.ratings),
            "relevant_pairs": len(holdout.relevant),
        },
        "parameters": asdict(holdout.params),
        "methods": {name: METHODS[name].description for name in methods},
        "results": methods,
        "build_seconds": {
            name: holdout.build_seconds[holdout.recommender_params(name)] for name in RECOMMENDERS
        },
    }
    if with_ablation:
        report["ablation"] = ablation(holdout)
    report["seconds"] = round(time.perf_counter() - start, 3)
    return report
