"""Cold start: lists that lean on the population's taste while a user has few ratings, and the
protocol that measures them."""

import json

import numpy as np
import pandas as pd
import pytest

from pipeline.data.cleaning import clean
from pipeline.data.readers import read_dataset
from pipeline.errors import ParameterError
from pipeline.evaluation.metrics import Paired
from pipeline.evaluation.protocols import draw_users, split_cold_start
from pipeline.evaluation.runs import run_cold_start
from pipeline.evaluation.tuning import COVERAGE_FLOOR, Tuning, validation_holdouts
from pipeline.lists.personal import GRID
from pipeline.lists.users import Catalog, recommend_users
from pipeline.params import PersonalOptions, PipelineParams
from service.cli import main

CLUSTERS, PER_CLUSTER, DEPTH = 3, 40, 120


@pytest.fixture(scope="module")
def movies() -> pd.DataFrame:
    """Three clusters of 40 movies with random factors, counts and mean ratings."""
    rng = np.random.default_rng(7)
    n = CLUSTERS * PER_CLUSTER
    return pd.DataFrame({
        "movieId": np.arange(1, n + 1),
        "cluster": np.repeat(np.arange(CLUSTERS), PER_CLUSTER),
        "score": rng.uniform(2.5, 4.5, n),
        "n_ratings": rng.integers(1, 500, n),
        "avg_rating": rng.uniform(2.0, 4.8, n),
        "factor_0": rng.normal(size=n),
        "factor_1": rng.normal(size=n),
        "factor_2": rng.normal(size=n),
    })  # fmt: skip


def catalog(movies: pd.DataFrame, **options) -> Catalog:
    defaults = {"user_clusters": 2, "exploration": 0.0}
    return Catalog.from_movies(movies, CLUSTERS, DEPTH, PersonalOptions(**defaults | options))


def rated(user: int, movie_ids: np.ndarray, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "userId": np.full(len(movie_ids), user, np.uint32),
        "movieId": np.asarray(movie_ids, np.uint32),
        "rating": rng.choice(np.arange(1, 11) / 2, len(movie_ids)).astype(np.float32),
    })  # fmt: skip


def from_clusters(recs: pd.DataFrame) -> pd.DataFrame:
    return recs[recs["source"] == "cluster"].reset_index(drop=True)


def test_knowing_nothing_a_list_is_the_populations_favourites_of_every_cluster(movies):
    """The limit of no ratings: the population's taste outweighs the user's entirely, and the
    whole list opens with it, from every cluster, not only the user's two: a few ratings say
    little of which clusters are the user's. Two users then share their list but for what each
    has seen."""
    known = catalog(movies, prior_ratings=1e12, opening=DEPTH, reach=PER_CLUSTER)
    first = rated(1, [1, 2, 41, 42, 43], seed=1)
    second = rated(2, [3, 44], seed=2)
    lists = [from_clusters(recommend_users(r, known).recommendations) for r in (first, second)]
    assert set(lists[0]["cluster"]) == set(lists[1]["cluster"]) == {0, 1, 2}
    for recs, ratings in zip(lists, (first, second), strict=True):
        unseen = movies[~movies["movieId"].isin(ratings["movieId"])]
        population = known.personal.population[unseen.index]
        expected = unseen["movieId"].to_numpy()[np.argsort(-population, kind="stable")]
        assert recs["movieId"].tolist() == expected.tolist()
    common = set(lists[0]["movieId"]) & set(lists[1]["movieId"])
    assert [m for m in lists[0]["movieId"] if m in common] == [
        m for m in lists[1]["movieId"] if m in common
    ]


def test_the_opening_reaches_only_the_populations_favourites_of_other_clusters(movies):
    """Beyond the user's own clusters, the opening may offer each cluster's `reach` movies the
    population likes best, and no other, and never one the user has seen."""
    reach = 3
    known = catalog(movies, prior_ratings=1e12, opening=DEPTH, reach=reach)
    other = movies[movies["cluster"] == 2]
    favourites = other["movieId"].to_numpy()[
        np.argsort(-known.personal.population[other.index], kind="stable")[:reach]
    ]
    mine = [1, 2, 41, 42, 43, favourites[0]]  # clusters 0 and 1, and one disliked favourite
    ratings = rated(1, mine, seed=1).assign(rating=np.float32([5, 5, 5, 5, 5, 1]))
    recs = from_clusters(recommend_users(ratings, known).recommendations)
    assert set(recs.loc[recs["cluster"] == 2, "movieId"]) == set(favourites[1:])


def test_only_the_opening_leaves_the_users_clusters(movies):
    """With the default opening, a new user's first places may come from any cluster; the rest
    of the list comes from the user's two."""
    known = catalog(movies, prior_ratings=20.0, opening=6, reach=PER_CLUSTER)
    ratings = rated(1, [1, 2, 41, 42, 43], seed=1)
    recs = from_clusters(recommend_users(ratings, known).recommendations)
    opening = round(6 * 20.0 / (20.0 + len(ratings)))
    beyond = recs.loc[recs["cluster"] == 2, "rank"]
    assert len(beyond) and beyond.max() <= opening


def test_equal_opening_scores_go_to_the_users_heavier_cluster():
    """Two movies of equal factors and ratings in the user's two clusters: the opening puts the
    one of the cluster the user likes more first, however the clusters are numbered. A version
    trained before the reach (reach 0) gets the same list its batch made."""
    twins = pd.DataFrame({
        "movieId": np.arange(1, 9),
        "cluster": np.repeat([0, 1], 4),
        "score": 3.0,
        "n_ratings": [1000, 10, 10, 10, 1000, 10, 10, 10],
        "avg_rating": [4.5, 3.0, 3.0, 3.0, 4.5, 3.0, 3.0, 3.0],
        "factor_0": [1.0, 0.2, -0.3, 0.5, 1.0, -0.1, 0.4, -0.6],
        "factor_1": [0.5, -0.7, 0.1, 0.3, 0.5, 0.8, -0.2, 0.6],
    })  # fmt: skip
    ratings = rated(1, [2, 6, 7], seed=1).assign(rating=np.float32([3, 5, 5]))  # likes cluster 1
    for reach in (0, 4):
        options = PersonalOptions(user_clusters=2, prior_ratings=1e12, opening=4, reach=reach)
        known = Catalog.from_movies(twins, 2, 8, options)
        recs = recommend_users(ratings, known).recommendations
        assert recs["movieId"].tolist()[:2] == [5, 1]


def test_with_many_ratings_the_list_is_the_personal_list(movies):
    """60 ratings against a prior of 2: round(6 * 2 / 62) = 0 places open, and without an
    opening nothing of the population is left in the list."""
    many = rated(1, movies["movieId"].to_numpy()[::2], seed=3)
    options = {"opening": 6, "exploration": 0.5}
    _, personal = recommend_users(many, catalog(movies, prior_ratings=0.0, **options))
    _, shrunk = recommend_users(many, catalog(movies, prior_ratings=2.0, **options))
    pd.testing.assert_frame_equal(shrunk, personal)
    _, opened = recommend_users(many, catalog(movies, prior_ratings=6.0, **options))
    assert not opened.equals(personal)  # round(6 * 6 / 66) = 1: one place opens


def test_a_few_ratings_open_with_the_blended_score_then_follow_the_personal_one(movies):
    """Four ratings against a prior of four: the population weighs half, and round(4 * 1/2)
    movies open the list; the personal order follows without repeating them."""
    few = rated(1, [1, 5, 41, 50], seed=4)
    _, personal = recommend_users(few, catalog(movies, prior_ratings=0.0))
    _, shrunk = recommend_users(few, catalog(movies, prior_ratings=4.0, opening=4))
    personal = from_clusters(personal)
    population = catalog(movies).personal.population[personal["movieId"].to_numpy() - 1]
    blended = 0.5 * personal["score"].to_numpy() + 0.5 * population
    opening = personal["movieId"].to_numpy()[np.argsort(-blended, kind="stable")[:2]]
    rest = [m for m in personal["movieId"] if m not in opening]
    assert from_clusters(shrunk)["movieId"].tolist() == [*opening, *rest]


def test_after_the_opening_popular_factors_are_damped_the_more_the_less_is_known(movies):
    """Four ratings against a prior of four (doubt 1/2): one place opens, and the rest ranks
    by the personal score times the factor norm to the power -0.6 / 2."""
    few = rated(1, [1, 5, 41, 50], seed=4)
    _, personal = recommend_users(few, catalog(movies, prior_ratings=0.0))
    options = {"prior_ratings": 4.0, "opening": 2, "exploration": 0.6}
    explored = from_clusters(recommend_users(few, catalog(movies, **options)).recommendations)
    norm = np.linalg.norm(movies.filter(like="factor_").to_numpy(), axis=1)
    personal = from_clusters(personal)
    rest = personal[personal["movieId"] != explored["movieId"].iloc[0]]
    further = rest["score"].to_numpy() * norm[rest["movieId"] - 1] ** -(0.6 * 0.5)
    order = np.argsort(-further, kind="stable")
    assert explored["movieId"].tolist()[1:] == rest["movieId"].to_numpy()[order].tolist()
    np.testing.assert_allclose(explored["score"].to_numpy()[1:], further[order], atol=1 / GRID)


def test_one_user_alone_gets_the_batch_list_with_the_population_in_it(movies):
    rng = np.random.default_rng(5)
    everyone = pd.concat(
        [
            rated(user, rng.choice(movies["movieId"], size, replace=False), seed=user)
            for user, size in enumerate([1, 2, 3, 5, 8, 13, 30, 60, 90], start=1)
        ],
        ignore_index=True,
    )
    shrunk = catalog(movies, prior_ratings=20.0, opening=6, exploration=0.4)
    favorites, batch = recommend_users(everyone, shrunk)
    _, alone_personal = recommend_users(everyone, catalog(movies, prior_ratings=0.0))
    assert not batch.equals(alone_personal)  # the population changed some lists
    for user in everyone["userId"].unique():
        fav, alone = recommend_users(everyone[everyone["userId"] == user], shrunk)
        expected = batch[batch["userId"] == user].reset_index(drop=True)
        pd.testing.assert_frame_equal(alone, expected)
        pd.testing.assert_frame_equal(
            fav, favorites[favorites["userId"] == user].reset_index(drop=True)
        )


def test_a_list_says_it_comes_from_first_ratings_while_the_population_outweighs_them():
    options = PersonalOptions(prior_ratings=30.0)
    assert options.first_ratings(29) and not options.first_ratings(30)
    assert options.doubt(30) == 0.5
    assert not PersonalOptions(prior_ratings=0.0).first_ratings(1)


def test_versions_trained_before_the_prior_keep_their_lists():
    saved = PipelineParams().to_metadata(10)
    for name in ("prior_ratings", "opening", "exploration"):
        del saved["personal"][name]
    old = PipelineParams.from_metadata({"parameters": saved})
    assert old.personal.prior_ratings == 0.0
    assert old.personal.opening == PersonalOptions().opening
    current = PipelineParams.from_metadata({"parameters": PipelineParams().to_metadata(10)})
    assert current.personal == PersonalOptions()


def test_versions_trained_before_the_reach_open_with_the_users_clusters_only(movies):
    saved = PipelineParams().to_metadata(10)
    del saved["personal"]["reach"]
    assert PipelineParams.from_metadata({"parameters": saved}).personal.reach == 0
    known = catalog(movies, prior_ratings=1e12, opening=DEPTH, reach=0)
    ratings = rated(1, [1, 2, 41, 42, 43], seed=1)  # clusters 0 and 1: the user's two
    recs = from_clusters(recommend_users(ratings, known).recommendations)
    assert set(recs["cluster"]) == {0, 1}


def test_negative_shrinkage_options_are_refused():
    with pytest.raises(ParameterError):
        PersonalOptions(prior_ratings=-1.0)
    with pytest.raises(ParameterError):
        PersonalOptions(opening=-1)
    with pytest.raises(ParameterError):
        PersonalOptions(reach=-1)


def test_cold_start_split_keeps_the_drawn_users_first_ratings_by_time():
    ratings = pd.DataFrame({
        "userId": [1, 1, 1, 1, 2, 2, 2, 3, 3],
        "movieId": [10, 11, 12, 13, 10, 11, 12, 10, 11],
        "timestamp": [40, 10, 30, 20, 5, 5, 5, 1, 2],
        "rating": 4.0,
    }).sample(frac=1.0, random_state=1)  # fmt: skip
    held = ratings[split_cold_start(ratings, keep=2, drawn=np.array([1, 2]))]
    # user 1 keeps 11 and 13 (the two earliest); user 2's ties go by movie id; 3 was not drawn
    assert sorted(map(tuple, held[["userId", "movieId"]].to_numpy())) == [(1, 10), (1, 12), (2, 12)]


def test_draws_are_seeded_sorted_and_without_repeats():
    users = np.arange(100, 200)
    drawn = draw_users(users, 20, 42)
    assert len(set(drawn)) == 20 and set(drawn) <= set(users)
    assert drawn.tolist() == sorted(drawn) == draw_users(users, 20, 42).tolist()
    assert drawn.tolist() != draw_users(users, 20, 43).tolist()


def test_paired_difference_has_the_standard_error_of_its_mean():
    got = Paired.of(np.array([0.1, 0.3, 0.2, 0.0]))
    assert got.mean == pytest.approx(0.15)
    assert got.se == pytest.approx(np.std([0.1, 0.3, 0.2, 0.0], ddof=1) / 2)
    assert got.users == 4


def test_tuning_takes_the_best_cold_ndcg_that_keeps_coverage_and_warm_users():
    params = [PipelineParams(personal=PersonalOptions(prior_ratings=p)) for p in (10, 20, 30)]
    cold = [
        [{"ndcg": 0.30, "coverage": COVERAGE_FLOOR + 0.01}],
        [{"ndcg": 0.33, "coverage": COVERAGE_FLOOR + 0.01}],
        [{"ndcg": 0.36, "coverage": COVERAGE_FLOOR}],  # the best, but no margin for new splits
    ]
    warm = [{"ndcg": 0.12, "coverage": 0.06}] * 3
    assert Tuning(params, cold, warm, {"ndcg": 0.12}).chosen == params[1]
    assert Tuning(params, cold, warm, {"ndcg": 0.20}).chosen is None  # warm users would lose


@pytest.fixture(scope="module")
def data(small_data):
    return clean(read_dataset(small_data))


def test_validation_is_carved_from_training_data_away_from_the_scored_users(data):
    params = PipelineParams(plots=False)
    validation = next(validation_holdouts(data, params, keeps=(5,), seeds=(42,)))
    users = np.unique(data.ratings["userId"].to_numpy())
    drawn = draw_users(users, round(0.2 * len(users)), 42)
    assert not set(validation.users) & set(drawn)
    train = data.ratings[~split_cold_start(data.ratings, 5, drawn)]
    key = ["userId", "movieId"]
    assert len(validation.relevant.merge(train, on=key)) == len(validation.relevant)
    assert len(validation.train.ratings.merge(train, on=key)) == len(validation.train.ratings)


@pytest.fixture(scope="module")
def cold_report(sample_data) -> dict:
    """Quality floors hold on the real sample: synthetic ratings carry no taste to learn."""
    return run_cold_start(sample_data, ["popular"], seed=42, keeps=(5, 10), n_seeds=5)


@pytest.mark.parametrize("keep", ["5", "10"])
def test_new_users_get_better_lists_than_the_most_popular(cold_report, keep):
    """A quality regression test on five draws of cold users (the goals of EVALUATION.md)."""
    part = cold_report["cold_start"][keep]
    personal, popular = part["results"]["personal"], part["results"]["popular"]
    assert personal["ndcg"] > popular["ndcg"]
    assert personal["coverage"] >= COVERAGE_FLOOR
    assert part["paired"]["popular"]["mean"] > 0


def test_the_cold_start_command_prints_and_writes_its_report(small_data, tmp_path, capsys):
    argv = ["evaluate", "--data", str(small_data), "--out", str(tmp_path), "--baseline", "popular"]
    cold = ["--protocol", "cold-start", "--first-ratings", "3", "--seeds", "2"]
    assert main([*argv, *cold]) == 0
    report = json.loads((tmp_path / "evaluation_cold_start.json").read_text())
    assert report["protocol"]["seeds"] == [42, 43]
    part = report["cold_start"]["3"]
    assert set(part["seeds"]["personal"]) == {"42", "43"}
    assert set(part["paired"]) == {"popular"}
    assert set(report["results"]) == {
        "popular, first 3",
        "personal, first 3",
        "favorite-cluster, first 3",
    }
    assert (tmp_path / "plots" / "evaluation_cold_start.png").read_bytes()[:4] == b"\x89PNG"
    assert not (tmp_path / "evaluation.json").exists()  # the temporal report stays as it was
    out = capsys.readouterr().out
    assert "first 3, NDCG@10 by seed" in out and "personal - popular" in out
