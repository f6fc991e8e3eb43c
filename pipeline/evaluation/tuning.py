"""Choosing the personal options on validation splits carved from training data only."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np

from pipeline.data.cleaning import CleanData
from pipeline.evaluation.protocols import (
    Holdout,
    cold_start_splits,
    draw_users,
    holdout_scores,
    split_cold_start,
)
from pipeline.params import PipelineParams

# What `--tune` tries, and what it asks of a choice: cold-start coverage of at least the floor
# and a margin, and warm NDCG no more than the slack below that of lists without the population's
# taste. The margin: a choice 3.00% in validation covered 2.89% on the splits of seeds 201-210.
TUNING_GRID = {
    "prior_ratings": (10.0, 20.0, 30.0, 40.0),
    "opening": (4, 6, 8),
    "exploration": (0.0, 0.2, 0.4, 0.6),
}
COVERAGE_FLOOR = 0.03
COVERAGE_MARGIN = 0.0025
WARM_SLACK = 0.005


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
            self.cold_mean(i, "coverage") >= COVERAGE_FLOOR + COVERAGE_MARGIN
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
            f"{COVERAGE_FLOOR} + {COVERAGE_MARGIN} and warm validation NDCG at most "
            f"{WARM_SLACK} below the lists without the population's taste",
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
    for keep, seed, drawn, test in cold_start_splits(data, params, keeps, seeds):
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
            cold[i].append(holdout_scores(validation, validation.lists(candidate).recommendations))
    warm = Holdout.split(Holdout.split(data, params).train, params)
    alone = replace(params, personal=replace(params.personal, prior_ratings=0.0))
    return Tuning(
        candidates,
        cold,
        [holdout_scores(warm, warm.lists(c).recommendations) for c in candidates],
        holdout_scores(warm, warm.lists(alone).recommendations),
    )
