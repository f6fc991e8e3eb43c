"""How well a list of movies shown to a new user works, offline: the standard elicitation
protocol. A fifth of the users, drawn per seed, are new: the pipeline trains without them. Each
method shows every new user the same number of movies; the user "answers" those in their own
history (with the rating they gave), and the list built from the answers is scored against the
rest of their history (NDCG@10, relevant: rated 4 or more). A user who answers none gets the
popular list, and is counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from pipeline.data.cleaning import CleanData
from pipeline.evaluation.metrics import list_hits, user_ndcg
from pipeline.evaluation.protocols import COLD_USERS, RELEVANT, draw_users
from pipeline.lists.ranking import popular_order
from pipeline.lists.users import Catalog, recommend_users
from pipeline.params import PipelineParams
from pipeline.run import Built, build

METHODS = ("onboarding", "popular", "random")
SHOWN = (10, 20)


def shown_movies(method: str, built: Built, n: int, seed: int) -> np.ndarray:
    movies = built.movies
    if method == "onboarding":
        return built.onboarding["movieId"].to_numpy()[:n]
    if method == "popular":
        return movies["movieId"].to_numpy()[popular_order(movies)[:n]]
    return np.random.default_rng(seed).choice(movies["movieId"].to_numpy(), n, replace=False)


def run_split(data: CleanData, params: PipelineParams, seed: int) -> dict[str, dict]:
    """Per method and number shown: answer rate, users who answered none, NDCG@10."""
    users = np.unique(data.ratings["userId"].to_numpy())
    new = draw_users(users, round(COLD_USERS * len(users)), seed)
    ratings = data.ratings
    is_new = ratings["userId"].isin(new).to_numpy()
    train = CleanData(ratings[~is_new].reset_index(drop=True), data.movies, data.tags, data.report)
    built = build(train, replace(params, random_state=seed), with_users=False)
    catalog = Catalog.from_movies(
        built.movies, built.k, params.stored_depth, params.personal_options
    )
    history = ratings[is_new]
    popular = built.movies["movieId"].to_numpy()[popular_order(built.movies)]
    found = {}
    for method in METHODS:
        for n in SHOWN:
            shown = shown_movies(method, built, n, seed)
            found[f"{method}, {n} shown"] = _score(history, shown, catalog, popular, new)
    return found


def _score(
    history: pd.DataFrame,
    shown: np.ndarray,
    catalog: Catalog,
    popular: np.ndarray,
    new: np.ndarray,
) -> dict:
    answered = history["movieId"].isin(shown).to_numpy()
    answers = history[answered]
    relevant = history[~answered & (history["rating"].to_numpy() >= RELEVANT)]
    lists = recommend_users(answers, catalog).recommendations
    silent = np.setdiff1d(new, answers["userId"].unique())
    fallback = pd.DataFrame(
        {
            "userId": np.repeat(silent, 10),
            "rank": np.tile(np.arange(1, 11), len(silent)),
            "movieId": np.tile(popular[:10], len(silent)),
        }
    )
    recs = pd.concat([lists[["userId", "rank", "movieId"]], fallback], ignore_index=True)
    hits = list_hits(recs, relevant[["userId", "movieId"]])
    answers_per_user = answers.groupby("userId").size().reindex(new, fill_value=0)
    return {
        "answer_rate": float(answers_per_user.mean() / len(shown)),
        "answered_none": float((answers_per_user == 0).mean()),
        "ndcg": float(user_ndcg(hits.hits, hits.n_relevant).mean()),
    }


def summarize(splits: Sequence[dict[str, dict]]) -> dict[str, dict]:
    """Mean and standard error over the splits, per method and metric."""
    summary = {}
    for name in splits[0]:
        rows = pd.DataFrame([split[name] for split in splits])
        summary[name] = {
            metric: {
                "mean": float(rows[metric].mean()),
                "se": float(rows[metric].std(ddof=1) / np.sqrt(len(rows)))
                if len(rows) > 1
                else 0.0,
            }
            for metric in rows.columns
        }
    return summary
