"""The evaluation harness: metric arithmetic, the split rule on the synthetic folder, and a
quality floor on the real sample."""

import json
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from pipeline.data.cleaning import clean
from pipeline.data.readers import read_dataset
from pipeline.evaluation.ablation import _ablation_steps, ablation
from pipeline.evaluation.baselines import METHODS, evaluate
from pipeline.evaluation.metrics import coverage, list_metrics, score_lists
from pipeline.evaluation.protocols import RELEVANT, Holdout, split_by_time
from pipeline.params import PipelineParams
from pipeline.run import build
from service.cli import main


def test_metrics_on_a_hand_computed_example():
    hits = np.array([[True, False, True], [False, False, False], [False, True, False]])
    n_relevant = np.array([2, 4, 5])
    got = list_metrics(hits, n_relevant)
    # user 0: DCG 1 + 1/log2(4) = 1.5, ideal 1 + 1/log2(3); user 2: 1/log2(3) over three hits
    ndcg0 = 1.5 / (1 + 1 / math.log2(3))
    ndcg2 = (1 / math.log2(3)) / (1 + 1 / math.log2(3) + 0.5)
    assert got["precision"] == pytest.approx((2 / 3 + 0 + 1 / 3) / 3)
    assert got["recall"] == pytest.approx((1.0 + 0 + 1 / 5) / 3)
    assert got["ndcg"] == pytest.approx((ndcg0 + 0 + ndcg2) / 3)
    assert got["hit_rate"] == pytest.approx(2 / 3)


def test_a_perfect_list_has_ndcg_one():
    assert list_metrics(np.array([[True, True, False]]), np.array([2]))["ndcg"] == 1.0


def test_coverage_counts_distinct_movies():
    assert coverage(np.array([1, 2, 2, 3, 1]), 10) == 0.3


def test_score_lists_counts_users_without_lists_and_ignores_the_rest():
    recs = pd.DataFrame({
        "userId": [1, 1, 1, 2, 9],
        "rank": [1, 2, 3, 1, 1],
        "movieId": [10, 11, 12, 10, 13],
    })  # fmt: skip
    relevant = pd.DataFrame({"userId": [1, 1, 3], "movieId": [11, 99, 10]})
    got = score_lists(recs, relevant, catalogue_size=100, n=2)
    # user 1: [10, 11] -> one hit at rank 2 of two relevant; user 3 has no list; 2 and 9
    # have nothing relevant and do not count; rank 3 is beyond the list length
    assert got["precision"] == pytest.approx((1 / 2 + 0) / 2)
    assert got["recall"] == pytest.approx((1 / 2 + 0) / 2)
    assert got["ndcg"] == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)) / 2)
    assert got["hit_rate"] == 0.5
    assert got["coverage"] == pytest.approx(2 / 100)


def ratings_for(times: dict[int, list[tuple[int, int]]]) -> pd.DataFrame:
    rows = [(u, m, t) for u, pairs in times.items() for m, t in pairs]
    frame = pd.DataFrame(rows, columns=["userId", "movieId", "timestamp"])
    return frame.sample(frac=1.0, random_state=3).assign(rating=4.0)  # order must not matter


def test_split_holds_out_the_latest_fifth_by_time():
    ratings = ratings_for({
        1: [(m, 1000 - m) for m in range(1, 11)],  # ten ratings: movies 1 and 2 are the latest
        2: [(5, 10), (6, 30), (7, 20)],  # floor(0.6) = 0, but at least one: movie 6
        3: [(8, 50)],  # a single rating is held out
        4: [(1, 7), (2, 7), (3, 7), (4, 7), (9, 7)],  # same time: the highest movie id is last
    })  # fmt: skip
    held = ratings[split_by_time(ratings)]
    assert sorted(map(tuple, held[["userId", "movieId"]].to_numpy())) == [
        (1, 1), (1, 2), (2, 6), (3, 8), (4, 9)
    ]  # fmt: skip


def holdout_of(folder) -> Holdout:
    return Holdout.split(clean(read_dataset(folder)), PipelineParams(plots=False))


def lists_of(holdout: Holdout) -> dict[str, pd.DataFrame]:
    return {name: method.lists(holdout) for name, method in METHODS.items()}


@pytest.fixture(scope="module")
def holdout(small_data) -> Holdout:
    return holdout_of(small_data)


@pytest.fixture(scope="module")
def lists(holdout) -> dict[str, pd.DataFrame]:
    return lists_of(holdout)


def test_the_split_holds_out_each_users_latest_fifth(holdout, small_data):
    """Counted from the raw file with pandas: per user the latest fifth of the ratings (at
    least one; ties in time by movie id); the evaluated users held out a rating of 4.0 or more."""
    ratings = pd.read_csv(small_data / "ratings.csv")
    ratings = ratings.sort_values(["userId", "timestamp", "movieId"])
    size = ratings.groupby("userId")["movieId"].transform("size")
    place = ratings.groupby("userId").cumcount()
    held = ratings[place >= size - np.maximum(1, size // 5)]
    assert 0 < len(holdout.train.ratings) == len(ratings) - len(held)
    evaluated = held.loc[held["rating"] >= RELEVANT, "userId"].unique()
    assert holdout.users.tolist() == sorted(evaluated)
    assert 0 < len(evaluated) < ratings["userId"].nunique()  # some held out nothing relevant


@pytest.mark.parametrize("name", list(METHODS))
def test_no_list_contains_a_training_movie(holdout, lists, name):
    recs = lists[name]
    top = recs[recs["rank"] <= 10]
    assert not top.merge(holdout.train.ratings, on=["userId", "movieId"]).size
    assert top.groupby("userId").size().max() <= 10


def test_the_default_recommender_beats_the_baselines(sample_data):
    """A quality regression test on the real sample: the lists the service publishes, scored
    by the protocol."""
    holdout = holdout_of(sample_data)
    lists = lists_of(holdout)
    catalogue = len(holdout.train.movies)
    scores = {name: score_lists(recs, holdout.relevant, catalogue) for name, recs in lists.items()}
    best = scores["personal"]
    assert best["ndcg"] > scores["popular"]["ndcg"]
    assert best["ndcg"] > scores["svd"]["ndcg"]
    assert best["ndcg"] >= 0.09 and best["coverage"] >= 0.05


def test_holdout_lists_are_those_the_pipeline_publishes(holdout):
    """Lists are made for the evaluated users only; users are independent, so they are the
    rows `build` (all users) writes for them."""
    params = holdout.recommender_params("personal")
    everyone = build(holdout.train, params).users.recommendations
    mine = everyone[everyone["userId"].isin(holdout.users)].reset_index(drop=True)
    pd.testing.assert_frame_equal(holdout.lists(params).recommendations, mine)


def test_build_times_are_kept_per_parameter_set(holdout):
    """Two builds of one recommender with different parameters each keep their own time."""
    personal = holdout.recommender_params("personal")
    other = replace(personal, personal=replace(personal.personal, user_clusters=3))
    holdout.recommender("personal")
    holdout.built(other)
    assert holdout.build_seconds.keys() >= {personal, other}


def test_every_ablation_step_reports_its_own_build_time(holdout):
    rows = ablation(holdout)
    for row, (_, change) in zip(rows, _ablation_steps(holdout.params.k), strict=True):
        assert row["build_seconds"] == holdout.build_seconds[change(holdout.params)]


def test_evaluation_is_deterministic(holdout, small_data):
    again = holdout_of(small_data)
    names = ["random", "spec-random", "personal"]
    assert evaluate(holdout, names) == evaluate(again, names)


def test_evaluate_command_writes_the_table_and_the_chart(small_data, holdout, tmp_path, capsys):
    argv = ["evaluate", "--data", str(small_data), "--out", str(tmp_path)]
    assert main([*argv, "--baseline", "random", "--baseline", "popular"]) == 0
    report = json.loads((tmp_path / "evaluation.json").read_text())
    assert list(report["results"]) == ["random", "popular", "personal", "favorite-cluster"]
    assert set(report["results"]["personal"]) == {
        "precision", "recall", "ndcg", "hit_rate", "coverage"
    }  # fmt: skip
    results, users = report["results"], len(holdout.users)
    assert report["counts"]["users_evaluated"] == users
    assert set(report["paired"]) == {"popular"}  # the baselines scored of popular and svd
    paired = report["paired"]["popular"]
    assert paired["users"] == users  # over the same users, the mean difference is the difference
    assert paired["mean"] == pytest.approx(
        results["personal"]["ndcg"] - results["popular"]["ndcg"], abs=1e-6
    )
    assert (tmp_path / "plots" / "evaluation.png").read_bytes()[:4] == b"\x89PNG"
    assert "personal" in capsys.readouterr().out


def test_the_command_line_offers_every_baseline_the_evaluation_scores():
    from pipeline.evaluation.baselines import BASELINES
    from pipeline.evaluation.options import BASELINE_NAMES

    assert tuple(BASELINES) == BASELINE_NAMES
