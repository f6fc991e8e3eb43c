"""The default recommender: preference weights, cluster choice, personal ranking, fold-in."""

import numpy as np
import pandas as pd
import pytest

from pipeline.features.factors import preference, preference_matrix, user_matrix
from pipeline.lists.personal import PersonalOptions, top_per_row
from pipeline.lists.users import (
    Catalog,
    favorites,
    load_catalog,
    read_user_ratings,
    recommend_users,
)

# cluster 0: movies 1-3, cluster 1: movies 4-6, cluster 2: movies 7-8 (8 was never rated)
MOVIES = pd.DataFrame({
    "movieId": [1, 2, 3, 4, 5, 6, 7, 8],
    "cluster": [0, 0, 0, 1, 1, 1, 2, 2],
    "score": [4.0, 3.9, 3.8, 3.7, 3.6, 3.5, 3.4, 3.3],
    "n_ratings": [80, 60, 10, 70, 50, 40, 5, 0],  # popular order: 1 4 2 5 6 3 7 8
    "avg_rating": [3.5, 3.0, 4.5, 4.0, 2.5, 3.0, 4.0, np.nan],
    "factor_0": [1.0, 0.8, 0.0, 1.0, -1.0, 0.5, 0.0, 0.0],
    "factor_1": [0.0, 0.2, 1.0, 0.1, 0.0, 0.5, -1.0, 0.0],
})  # fmt: skip


def catalog(depth: int = 3, **options) -> Catalog:
    defaults = {"user_clusters": 1, "damping": 0.0, "prior_ratings": 0.0}
    return Catalog.from_movies(MOVIES, 3, depth, PersonalOptions(**defaults | options))


def ratings(rows: list[tuple[int, int, float]]) -> pd.DataFrame:
    users, movies, values = zip(*rows, strict=True)
    return pd.DataFrame({
        "userId": np.array(users, np.uint32),
        "movieId": np.array(movies, np.uint32),
        "rating": np.array(values, np.float32),
    })  # fmt: skip


def test_preference_is_one_plus_the_users_z_score_floored_at_zero():
    codes = np.array([0, 0, 1, 1, 1, 0])
    got = preference(codes, np.array([5.0, 1.0, 3.0, 3.0, 3.0, 3.0]), 2)
    # user 0: mean 3, std sqrt(8/3); user 1 rated everything alike: no spread, weight 1
    z = 2 / np.sqrt(8 / 3)
    np.testing.assert_allclose(got, [1 + z, 0.0, 1.0, 1.0, 1.0, 1.0])


def test_list_ranks_the_best_cluster_by_the_users_taste_then_tops_up():
    # user likes movie 1 (z = +1, weight 2) and dislikes movie 5 (weight 0): embedding (1, 0)
    _, recs = recommend_users(ratings([(1, 1, 5.0), (1, 5, 1.0)]), catalog())
    assert recs["movieId"].tolist() == [2, 3, 4]  # 2 and 3 by dot product, then most popular
    assert recs["source"].tolist() == ["cluster", "cluster", "popular"]
    assert recs["cluster"].tolist() == [0, 0, 1]
    assert recs["score"].iloc[0] > recs["score"].iloc[1]


def test_candidates_follow_what_the_user_liked_not_what_they_rated_most():
    few_liked_many_disliked = ratings([(1, 1, 5.0), (1, 5, 1.0), (1, 6, 1.0)])
    fav = favorites(few_liked_many_disliked, catalog())
    assert fav["favorite_cluster"].tolist() == [1]  # the spec's rule: most rated movies
    assert fav[["n_c0", "n_c1", "n_c2"]].to_numpy().tolist() == [[1, 2, 0]]
    assert fav["w_c1"].iloc[0] < fav["w_c0"].iloc[0]
    _, by_rating = recommend_users(few_liked_many_disliked, catalog(depth=1))
    _, by_count = recommend_users(few_liked_many_disliked, catalog(1, cluster_weighting="count"))
    assert set(by_rating.loc[by_rating["source"] == "cluster", "cluster"]) == {0}
    assert set(by_count.loc[by_count["source"] == "cluster", "cluster"]) == {1}


def test_candidates_come_from_the_users_top_clusters_only():
    _, recs = recommend_users(
        ratings([(1, 1, 5.0), (1, 4, 4.0)]), catalog(depth=8, user_clusters=2)
    )
    from_clusters = recs[recs["source"] == "cluster"]
    assert set(from_clusters["cluster"]) <= {0, 1}
    assert 8 not in set(from_clusters["movieId"])  # never rated: no factors, never a candidate


def test_lists_never_repeat_or_recommend_a_rated_movie():
    rows = [(1, m, 4.0 if m % 2 else 2.0) for m in range(1, 8)]
    _, recs = recommend_users(ratings(rows), catalog(depth=8, user_clusters=3))
    assert recs["movieId"].tolist() == [8]  # everything else was rated
    assert recs["rank"].tolist() == [1]


def test_lists_from_the_factors_preference_matrix_equal_those_built_from_the_ratings():
    everyone = ratings([(3, 1, 4.5), (3, 6, 2.0), (4, 5, 3.5), (4, 2, 5.0), (4, 4, 1.0)])
    shared = catalog(depth=5, user_clusters=2, damping=0.3)
    fav, recs = recommend_users(everyone, shared)
    reused = recommend_users(everyone, shared, preference_matrix(everyone, shared.movie_ids))
    pd.testing.assert_frame_equal(reused.favorites, fav)
    pd.testing.assert_frame_equal(reused.recommendations, recs)


@pytest.mark.parametrize("user", [3, 4, 5])
def test_one_user_gets_the_same_list_alone_as_in_a_batch(user):
    everyone = ratings([
        (3, 1, 4.5), (3, 6, 2.0), (3, 7, 3.0),
        (4, 2, 5.0), (4, 3, 1.0), (4, 5, 3.5), (4, 4, 2.5),
        (5, 7, 4.0),
    ])  # fmt: skip
    options = {"user_clusters": 2, "damping": 0.3}
    fav, batch = recommend_users(everyone, catalog(depth=5, **options))
    alone_fav, alone = recommend_users(everyone[everyone["userId"] == user], catalog(5, **options))
    pd.testing.assert_frame_equal(batch[batch["userId"] == user].reset_index(drop=True), alone)
    pd.testing.assert_frame_equal(fav[fav["userId"] == user].reset_index(drop=True), alone_fav)


def test_top_per_row_orders_best_first_and_ties_by_column():
    block = np.array([[0.1, 0.9, 0.5, 0.9], [3.0, -np.inf, 1.0, 2.0]])
    index, value = top_per_row(block, 3)
    assert index.tolist() == [[1, 3, 2], [0, 3, 2]]
    assert value.tolist() == [[0.9, 0.9, 0.5], [3.0, 2.0, 1.0]]


def test_a_chunk_of_users_refreshed_from_the_version_folder_matches_the_batch(small_run):
    version = small_run.folder
    catalog = load_catalog(version)
    assert catalog.personal is not None
    chunk = read_user_ratings(version, 100, 180)
    fav, recs = recommend_users(chunk, catalog)
    batch = pd.read_parquet(version.recommendations)
    batch = batch[batch["userId"].between(100, 180)].reset_index(drop=True)
    pd.testing.assert_frame_equal(recs, batch)
    saved = pd.read_parquet(version.favorites)
    pd.testing.assert_frame_equal(
        fav, saved[saved["userId"].between(100, 180)].reset_index(drop=True)
    )


def test_user_matrix_is_the_same_from_sorted_and_from_shuffled_pairs():
    codes = np.array([0, 0, 1, 2, 2, 2])
    movie = np.array([1, 3, 0, 0, 2, 3])
    values = np.array([0.5, 0.0, 1.0, 2.0, 0.25, 1.5])
    ordered = user_matrix(codes, movie, values, 3, 4)
    shuffle = np.array([4, 0, 5, 2, 1, 3])
    shuffled = user_matrix(codes[shuffle], movie[shuffle], values[shuffle], 3, 4)
    for matrix in (ordered, shuffled):
        assert matrix.has_canonical_format
        assert matrix.nnz == 6  # the zero preference stays an entry
        assert matrix.indices.tolist() == movie.tolist()
        assert matrix.data.tolist() == values.tolist()
        assert matrix.indptr.tolist() == [0, 2, 3, 6]
