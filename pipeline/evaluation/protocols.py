"""The evaluation protocols' splits: the latest ratings of every user held out (temporal), or
all but the first K of a drawn fifth of the users (cold start); and a split's trained pipelines."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np
import pandas as pd

from pipeline.artifacts import UserLists
from pipeline.data.cleaning import CleanData
from pipeline.data.indexing import group_codes, group_starts
from pipeline.evaluation.metrics import score_lists
from pipeline.lists.users import Catalog, recommend_users
from pipeline.params import PipelineParams
from pipeline.run import Built, build

HOLDOUT = 0.2
COLD_USERS = 0.2  # share of the users a cold-start split draws
RELEVANT = 4.0


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


def holdout_scores(holdout: Holdout, recs: pd.DataFrame) -> dict[str, float]:
    return score_lists(recs, holdout.relevant, len(holdout.train.movies))


class ColdStart(NamedTuple):
    """One cold-start split: the ratings kept, the seed of the draw, the users drawn."""

    keep: int
    seed: int
    drawn: np.ndarray
    holdout: Holdout


def cold_start_splits(
    data: CleanData, params: PipelineParams, keeps: Sequence[int], seeds: Sequence[int]
) -> Iterator[ColdStart]:
    """A fifth of the users, drawn per seed, train on their first K ratings only. One split at
    a time: each trains its own pipelines, so only one is held in memory."""
    users = np.unique(data.ratings["userId"].to_numpy())
    for keep, seed in itertools.product(keeps, seeds):
        drawn = draw_users(users, round(COLD_USERS * len(users)), seed)
        held = split_cold_start(data.ratings, keep, drawn)
        yield ColdStart(keep, seed, drawn, Holdout.split(data, params, held))
