"""Offline evaluation: hide some ratings, train on the rest, score top-10 lists.

The protocols, and the names `movierec evaluate` offers, are described in
`pipeline.evaluation_options`, which the command line reads without importing this module.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD

from pipeline import plots
from pipeline.artifacts import UserLists
from pipeline.cleaning import CleanData, clean
from pipeline.evaluation_options import COLD_START, FIRST_RATINGS, METRICS, SEEDS, TEMPORAL
from pipeline.indexing import group_codes, group_starts, positions_of
from pipeline.params import FAVORITE_CLUSTER, PERSONAL, RECOMMENDERS, PipelineParams
from pipeline.personal import top_per_row
from pipeline.ranking import popular_order
from pipeline.readers import read_dataset
from pipeline.run import Built, build
from pipeline.users import Catalog, recommend_users

HOLDOUT = 0.2
COLD_USERS = 0.2  # share of the users a cold-start split draws
RELEVANT = 4.0
LIST_LENGTH = 10
SCORE_BLOCK = 1 << 24  # users x movies scores held at once by the dense baselines
# What `--tune` tries, and what it asks of a choice: cold-start coverage of at least the floor
# and warm NDCG no more than the slack below that of lists without the population's taste.
TUNING_GRID = {
    "prior_ratings": (10.0, 20.0, 30.0, 40.0),
    "opening": (4, 6, 8),
    "exploration": (0.0, 0.2, 0.4, 0.6),
}
COVERAGE_FLOOR = 0.03
WARM_SLACK = 0.005


def _time_places(ratings: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows ordered by user, time, movie id: the order, each ordered row's user, and its
    0-based place among that user's ratings."""
    order = np.lexsort((
        ratings["movieId"].to_numpy(),
        ratings["timestamp"].to_numpy(),
        ratings["userId"].to_numpy(),
    ))  # fmt: skip
    user = ratings["userId"].to_numpy()[order]
    return order, user, np.arange(len(user)) - group_starts(user)


def split_by_time(ratings: pd.DataFrame, fraction: float = HOLDOUT) -> np.ndarray:
    """True for held-out rows: per user the latest floor(fraction * n) ratings, at least one."""
    order, user, place = _time_places(ratings)
    codes, _ = group_codes(user)
    size = np.bincount(codes)[codes]
    held_out = np.maximum(1, np.floor(size * fraction).astype(np.int64))
    mask = np.empty(len(user), dtype=bool)
    mask[order] = place >= size - held_out
    return mask


def split_cold_start(ratings: pd.DataFrame, keep: int, drawn: np.ndarray) -> np.ndarray:
    """True for held-out rows: every rating of the `drawn` users after their first `keep`."""
    order, user, place = _time_places(ratings)
    mask = np.empty(len(user), dtype=bool)
    mask[order] = np.isin(user, drawn) & (place >= keep)
    return mask


def draw_users(users: np.ndarray, count: int, seed: int | Sequence[int]) -> np.ndarray:
    """`count` of `users`, drawn without replacement, ascending."""
    return np.sort(np.random.default_rng(seed).choice(users, size=count, replace=False))


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


@dataclass
class Holdout:
    """The training split, the relevant held-out pairs, and the recommenders trained on it."""

    train: CleanData
    relevant: pd.DataFrame
    params: PipelineParams
    users: np.ndarray = field(init=False)  # evaluated users, ascending
    trainings: dict[PipelineParams, Built] = field(default_factory=dict)  # without user lists
    builds: dict[PipelineParams, Built] = field(default_factory=dict)
    build_seconds: dict[PipelineParams, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.users = np.unique(self.relevant["userId"].to_numpy())

    @classmethod
    def split(
        cls, data: CleanData, params: PipelineParams, held: np.ndarray | None = None
    ) -> Holdout:
        """Train on the rows `held` leaves (default: the temporal split's)."""
        held = split_by_time(data.ratings) if held is None else held
        ratings = data.ratings
        train = CleanData(
            ratings[~held].reset_index(drop=True), data.movies, data.tags, data.report
        )
        relevant = ratings.loc[held & (ratings["rating"].to_numpy() >= RELEVANT)]
        return cls(train, relevant[["userId", "movieId"]].reset_index(drop=True), params)

    def built(self, params: PipelineParams) -> Built:
        """The pipeline trained on the split, with the evaluated users' lists (`build_seconds`:
        training plus their lists).

        Personal options only shape the lists, so parameter sets that differ in nothing else
        share one training.
        """
        if params not in self.builds:
            start = time.perf_counter()
            trained = self._training(replace(params, personal=self.params.personal))
            catalog = Catalog.from_movies(
                trained.movies, trained.k, params.stored_depth, params.personal_options
            )
            mine = self.train.ratings[self.train.ratings["userId"].isin(self.users)]
            self.builds[params] = replace(trained, users=recommend_users(mine, catalog))
            self.build_seconds[params] = round(time.perf_counter() - start, 3)
        return self.builds[params]

    def _training(self, params: PipelineParams) -> Built:
        if params not in self.trainings:
            self.trainings[params] = build(self.train, params, with_users=False)
        return self.trainings[params]

    def lists(self, params: PipelineParams) -> UserLists:
        return self.built(params).users

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
PAIRED = ("popular", "svd")  # baselines the default's per-user NDCG is compared with


def method_lists(holdout: Holdout, methods: Sequence[str]) -> dict[str, pd.DataFrame]:
    return {name: METHODS[name].lists(holdout) for name in methods}


def evaluate(holdout: Holdout, methods: Sequence[str] = tuple(METHODS)) -> dict[str, dict]:
    """Metrics per method, in the order given."""
    return _all_scores(holdout, method_lists(holdout, methods))


def _scores(holdout: Holdout, recs: pd.DataFrame) -> dict[str, float]:
    return score_lists(recs, holdout.relevant, len(holdout.train.movies))


def _all_scores(holdout: Holdout, lists: dict[str, pd.DataFrame]) -> dict[str, dict]:
    return {name: _scores(holdout, recs) for name, recs in lists.items()}


def paired_gains(holdout: Holdout, lists: dict[str, pd.DataFrame]) -> dict[str, np.ndarray]:
    """Per evaluated user, the default's NDCG minus that of each baseline of PAIRED scored."""
    return {
        name: ndcg_gain(lists[PERSONAL], lists[name], holdout.relevant)
        for name in PAIRED
        if name in lists
    }


def _ablation_steps(k: int) -> list[tuple[str, Callable[[PipelineParams], PipelineParams]]]:
    """Each step adds one idea to the previous one; the last are references, not steps."""

    def personal(params: PipelineParams, **changes) -> PipelineParams:
        return replace(params, recommender=PERSONAL, personal=replace(params.personal, **changes))

    alone = {"prior_ratings": 0.0}  # lists from the user's ratings only
    first = alone | {"user_clusters": 1, "cluster_weighting": "count", "damping": 0.0}
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
        (
            "+ second-best cluster",
            lambda p: personal(p, **alone | {"user_clusters": 2, "damping": 0.0}),
        ),
        ("+ damping of popular movies' factors", lambda p: personal(p, **alone)),
        ("+ opening blended with the population's taste", lambda p: personal(p, exploration=0.0)),
        ("+ exploration after the opening (= default)", lambda p: personal(p)),
        ("reference: three clusters", lambda p: personal(p, user_clusters=3)),
        ("reference: every cluster (no restriction)", lambda p: personal(p, user_clusters=k)),
        ("reference: 1000 candidates per cluster", lambda p: personal(p, candidates=1000)),
    ]


def ablation(holdout: Holdout) -> list[dict]:
    """The personal recommender built up step by step from the spec's method, each step scored
    (`build_seconds`: the pipeline's time for that step's parameters)."""
    rows = []
    for label, change in _ablation_steps(holdout.params.k):
        params = change(holdout.params)
        scores = _scores(holdout, holdout.lists(params).recommendations)
        rows.append({"step": label} | scores | {"build_seconds": holdout.build_seconds[params]})
    return rows


def bar_chart(report: dict, path: Path) -> None:
    """Grouped bars of a temporal report: one group per method, one bar per metric."""
    results = report["results"]
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


def cold_start_chart(report: dict, path: Path) -> None:
    """NDCG by the number of ratings the cold users kept, one line per method, the seeds'
    spread as error bars."""
    by_keep = report["cold_start"]
    fig, ax = plots.figure(9, 4.5)
    for name in report["methods"]:
        seeds = [list(part["seeds"][name].values()) for part in by_keep.values()]
        ndcg = np.array([[scores["ndcg"] for scores in row] for row in seeds])
        ax.errorbar(range(len(by_keep)), ndcg.mean(axis=1), yerr=ndcg.std(axis=1), label=name,
                    capsize=3)  # fmt: skip
    ax.set_xticks(range(len(by_keep)), list(by_keep))
    ax.set(
        xlabel="ratings a cold user kept",
        ylabel=f"NDCG@{LIST_LENGTH} (mean and spread over the draws)",
        title="Cold-start users",
    )
    ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1, 0.5))
    plots.save(fig, path)


def paired_text(paired: dict[str, dict]) -> str:
    return "\n".join(
        f"paired NDCG@{LIST_LENGTH} difference personal - {name}: "
        f"{d['mean']:+.4f} (standard error {d['se']:.4f}, {d['users']} users)"
        for name, d in paired.items()
    )


def seeds_text(report: dict) -> str:
    """Per K of a cold-start report: each method's NDCG per seed and their mean, then the
    paired differences pooled over the seeds."""
    blocks, seeds = [], report["protocol"]["seeds"]
    for keep, part in report["cold_start"].items():
        head = f"first {keep}, NDCG@{LIST_LENGTH} by seed"
        width = max(len(head), *map(len, part["seeds"]))
        lines = [f"{head:<{width}}" + "".join(f"{seed:>8}" for seed in [*seeds, "mean"])]
        for name, by_seed in part["seeds"].items():
            values = [by_seed[str(seed)]["ndcg"] for seed in seeds]
            lines.append(
                f"{name:<{width}}" + "".join(f"{v:>8.4f}" for v in [*values, np.mean(values)])
            )
        blocks.append("\n".join([*lines, paired_text(part["paired"])]))
    return "\n\n".join(blocks)


def tuning_text(tuning: dict) -> str:
    """The validation grid of `--tune`, one candidate a line, and its choice."""
    columns = [*TUNING_GRID, "cold_ndcg", "cold_coverage", "warm_ndcg", "allowed"]
    lines = ["".join(f"{name:>15}" for name in columns)]
    lines += ["".join(_cell(row[name]) for name in columns) for row in tuning["grid"]]
    return "\n".join([*lines, f"rule: {tuning['rule']}", f"chosen: {tuning['chosen']}"])


def _cell(value: object) -> str:
    return f"{value:>15.4f}" if isinstance(value, float) else f"{value!s:>15}"


def _protocol(name: str) -> dict:
    return {
        "name": name,
        "order": "timestamp, then movieId",
        "relevant": f"held-out rating >= {RELEVANT}",
        "list_length": LIST_LENGTH,
        "seen": "lists exclude the user's training movies",
    }


def _mean_rows(rows: Sequence[dict]) -> dict:
    """Field by field mean of dicts of numbers (with the first's non-numeric fields)."""
    return rows[0] | {
        key: float(np.mean([row[key] for row in rows]))
        for key, value in rows[0].items()
        if isinstance(value, float | int)
    }


def _paired_report(gains: dict[str, list[np.ndarray]]) -> dict[str, dict]:
    return {name: Paired.of(np.concatenate(parts))._asdict() for name, parts in gains.items()}


def run_evaluation(
    source: Path,
    baselines: Sequence[str],
    seed: int,
    with_ablation: bool,
    with_tuning: bool = False,
) -> dict:
    """The temporal evaluation of a MovieLens folder, as the report `evaluation.json` holds."""
    start = time.perf_counter()
    data = clean(read_dataset(source))
    params = PipelineParams(random_state=seed, plots=False)
    holdout = Holdout.split(data, params)
    lists = method_lists(holdout, [*baselines, *RECOMMENDERS])
    methods = _all_scores(holdout, lists)
    report = {
        "data_dir": str(Path(source).resolve()),
        "protocol": _protocol(TEMPORAL)
        | {"holdout": f"per user, the latest floor({HOLDOUT} * n) ratings, at least one"},
        "counts": {
            "users": int(data.ratings["userId"].nunique()),
            "users_evaluated": len(holdout.users),
            "movies": len(data.movies),
            "train_ratings": len(holdout.train.ratings),
            "relevant_pairs": len(holdout.relevant),
        },
        "parameters": asdict(params),
        "methods": {name: METHODS[name].description for name in methods},
        "results": methods,
        "paired": _paired_report(
            {name: [gain] for name, gain in paired_gains(holdout, lists).items()}
        ),
        "build_seconds": {
            name: holdout.build_seconds[holdout.recommender_params(name)] for name in RECOMMENDERS
        },
    }
    if with_ablation:
        report["ablation"] = ablation(holdout)
    if with_tuning:
        report["tuning"] = tune(data, params, FIRST_RATINGS, _seeds(seed, SEEDS)).report()
    report["seconds"] = round(time.perf_counter() - start, 3)
    return report


def _seeds(seed: int, n: int) -> list[int]:
    return list(range(seed, seed + n))


class ColdStart(NamedTuple):
    """One cold-start split: the ratings kept, the seed of the draw, the users drawn."""

    keep: int
    seed: int
    drawn: np.ndarray
    holdout: Holdout


def _cold_start_splits(
    data: CleanData, params: PipelineParams, keeps: Sequence[int], seeds: Sequence[int]
) -> Iterator[ColdStart]:
    """A fifth of the users, drawn per seed, train on their first K ratings only. One split at
    a time: each trains its own pipelines, so only one is held in memory."""
    users = np.unique(data.ratings["userId"].to_numpy())
    for keep, seed in itertools.product(keeps, seeds):
        drawn = draw_users(users, round(COLD_USERS * len(users)), seed)
        held = split_cold_start(data.ratings, keep, drawn)
        yield ColdStart(keep, seed, drawn, Holdout.split(data, params, held))


def _score_cold_start(
    data: CleanData,
    params: PipelineParams,
    names: Sequence[str],
    splits: tuple[Sequence[int], Sequence[int]],
    with_ablation: bool,
) -> dict[str, dict]:
    """Per K (of `splits`, K and seeds): each method's metrics per seed and their mean, the
    default's paired NDCG differences pooled over the seeds, the ablation's mean."""
    by_keep: dict[str, dict] = {}
    for keep, draw, _, holdout in _cold_start_splits(data, params, *splits):
        part = by_keep.setdefault(str(keep), {"seeds": {n: {} for n in names}, "gains": {}})
        lists = method_lists(holdout, names)
        for name, scores in _all_scores(holdout, lists).items():
            part["seeds"][name][str(draw)] = scores
        for name, gain in paired_gains(holdout, lists).items():
            part["gains"].setdefault(name, []).append(gain)
        part.setdefault("users_evaluated", {})[str(draw)] = len(holdout.users)
        if with_ablation:
            part.setdefault("ablation", []).append(ablation(holdout))
    for part in by_keep.values():
        part["results"] = {n: _mean_rows(list(part["seeds"][n].values())) for n in names}
        part["paired"] = _paired_report(part.pop("gains"))
        if with_ablation:
            part["ablation"] = [_mean_rows(rows) for rows in zip(*part["ablation"], strict=True)]
    return by_keep


def run_cold_start(
    source: Path,
    baselines: Sequence[str],
    seed: int,
    keeps: Sequence[int] = FIRST_RATINGS,
    n_seeds: int = SEEDS,
    with_ablation: bool = False,
    with_tuning: bool = False,
) -> dict:
    """The cold-start evaluation, K by K (`cold_start`), draws of users seeded `seed`,
    `seed` + 1, ...; `results` flattens the means over the draws ("personal, first 5")."""
    start = time.perf_counter()
    data = clean(read_dataset(source))
    params = PipelineParams(random_state=seed, plots=False)
    seeds = _seeds(seed, n_seeds)
    names = [*baselines, *RECOMMENDERS]
    by_keep = _score_cold_start(data, params, names, (keeps, seeds), with_ablation)
    evaluated = [n for part in by_keep.values() for n in part["users_evaluated"].values()]
    report = {
        "data_dir": str(Path(source).resolve()),
        "protocol": _protocol(COLD_START)
        | {
            "users": f"{COLD_USERS} of the users, drawn per seed, keep their first K ratings",
            "first_ratings": list(keeps),
            "seeds": seeds,
        },
        "counts": {
            "users": int(data.ratings["userId"].nunique()),
            "users_evaluated": round(float(np.mean(evaluated))),  # per draw
            "movies": len(data.movies),
        },
        "parameters": asdict(params),
        "methods": {name: METHODS[name].description for name in names},
        "results": {
            f"{name}, first {keep}": part["results"][name]
            for keep, part in by_keep.items()
            for name in names
        },
        "cold_start": by_keep,
    }
    if with_tuning:
        report["tuning"] = tune(data, params, keeps, seeds).report()
    report["seconds"] = round(time.perf_counter() - start, 3)
    return report


@dataclass
class Tuning:
    """Validation scores of each candidate set of personal options, and the rule choosing one."""

    candidates: list[PipelineParams]
    cold: list[list[dict]]  # per candidate, the scores of each cold-start validation split
    warm: list[dict]  # per candidate, the scores of the temporal validation split
    alone_warm: dict  # the temporal validation split's scores without the population's taste

    def cold_mean(self, i: int, metric: str) -> float:
        return float(np.mean([scores[metric] for scores in self.cold[i]]))

    def allowed(self, i: int) -> bool:
        return (
            self.cold_mean(i, "coverage") >= COVERAGE_FLOOR
            and self.warm[i]["ndcg"] >= self.alone_warm["ndcg"] - WARM_SLACK
        )

    @property
    def chosen(self) -> PipelineParams | None:
        """The best mean cold-start NDCG among the allowed candidates; None if none is."""
        allowed = [i for i in range(len(self.candidates)) if self.allowed(i)]
        best = max(allowed, key=lambda i: self.cold_mean(i, "ndcg"), default=None)
        return None if best is None else self.candidates[best]

    def report(self) -> dict:
        def knobs(params: PipelineParams) -> dict:
            return {name: getattr(params.personal, name) for name in TUNING_GRID}

        chosen = self.chosen
        return {
            "rule": f"best mean cold-start validation NDCG with mean coverage >= "
            f"{COVERAGE_FLOOR} and warm validation NDCG at most {WARM_SLACK} below the lists "
            "without the population's taste",
            "alone_warm": self.alone_warm,
            "chosen": None if chosen is None else knobs(chosen),
            "grid": [
                knobs(params)
                | {
                    "cold_ndcg": self.cold_mean(i, "ndcg"),
                    "cold_coverage": self.cold_mean(i, "coverage"),
                    "warm_ndcg": self.warm[i]["ndcg"],
                    "warm_coverage": self.warm[i]["coverage"],
                    "allowed": self.allowed(i),
                }
                for i, params in enumerate(self.candidates)
            ],
        }


def tuning_candidates(params: PipelineParams) -> list[PipelineParams]:
    return [
        replace(
            params, personal=replace(params.personal, **dict(zip(TUNING_GRID, values, strict=True)))
        )
        for values in itertools.product(*TUNING_GRID.values())
    ]


def validation_holdouts(
    data: CleanData, params: PipelineParams, keeps: Sequence[int], seeds: Sequence[int]
) -> Iterator[Holdout]:
    """Cold-start splits carved from each test split's training data: as many users as the
    test drew, among those it did not draw, keep their first K ratings."""
    for keep, seed, drawn, test in _cold_start_splits(data, params, keeps, seeds):
        train = test.train.ratings
        eligible = np.setdiff1d(np.unique(train["userId"].to_numpy()), drawn)
        chosen = draw_users(eligible, len(drawn), (seed, 1))
        yield Holdout.split(test.train, params, split_cold_start(train, keep, chosen))


def tune(
    data: CleanData, params: PipelineParams, keeps: Sequence[int], seeds: Sequence[int]
) -> Tuning:
    """Score every candidate of TUNING_GRID on validation splits of training data only: the
    cold-start ones of `validation_holdouts` and the temporal split of the temporal split's
    training data."""
    candidates = tuning_candidates(params)
    cold: list[list[dict]] = [[] for _ in candidates]
    for validation in validation_holdouts(data, params, keeps, seeds):
        for i, candidate in enumerate(candidates):
            cold[i].append(_scores(validation, validation.lists(candidate).recommendations))
    warm = Holdout.split(Holdout.split(data, params).train, params)
    alone = replace(params, personal=replace(params.personal, prior_ratings=0.0))
    return Tuning(
        candidates,
        cold,
        [_scores(warm, warm.lists(c).recommendations) for c in candidates],
        _scores(warm, warm.lists(alone).recommendations),
    )
