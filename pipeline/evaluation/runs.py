"""Offline evaluation: hide some ratings, train on the rest, score top-10 lists.

The protocols, and the names `movierec evaluate` offers, are described in
`pipeline.evaluation.options`, which the command line reads without importing this module.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from pipeline.data.cleaning import CleanData, clean
from pipeline.data.readers import read_dataset
from pipeline.evaluation.ablation import ablation
from pipeline.evaluation.baselines import METHODS, all_scores, method_lists, paired_gains
from pipeline.evaluation.metrics import LIST_LENGTH, Paired
from pipeline.evaluation.options import COLD_START, FIRST_RATINGS, SEEDS, TEMPORAL
from pipeline.evaluation.protocols import COLD_USERS, HOLDOUT, RELEVANT, Holdout, cold_start_splits
from pipeline.evaluation.tuning import tune
from pipeline.params import RECOMMENDERS, PipelineParams


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
    methods = all_scores(holdout, lists)
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
    for keep, draw, _, holdout in cold_start_splits(data, params, *splits):
        part = by_keep.setdefault(str(keep), {"seeds": {n: {} for n in names}, "gains": {}})
        lists = method_lists(holdout, names)
        for name, scores in all_scores(holdout, lists).items():
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
