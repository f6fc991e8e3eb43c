"""The personal recommender built up step by step from the spec's method, each step scored."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from pipeline.evaluation.protocols import Holdout, holdout_scores
from pipeline.params import FAVORITE_CLUSTER, PERSONAL, PipelineParams


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
        scores = holdout_scores(holdout, holdout.lists(params).recommendations)
        rows.append({"step": label} | scores | {"build_seconds": holdout.build_seconds[params]})
    return rows
