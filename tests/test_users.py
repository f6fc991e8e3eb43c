import numpy as np
import pandas as pd
import pytest

from pipeline.features.factors import user_matrix
from pipeline.lists import users
from pipeline.lists.users import Catalog, Rated, cluster_counts, favorites, recommend_users


def catalog(depth: int = 3) -> Catalog:
    # cluster 0: movies 1..4, cluster 1: movies 5..7; score decides the order inside a cluster
    movies = pd.DataFrame({
        "movieId": [1, 2, 3, 4, 5, 6, 7],
        "cluster": [0, 0, 0, 0, 1, 1, 1],
        "score": [4.0, 4.5, 3.0, 3.5, 4.9, 2.0, 3.0],
        "n_ratings": [10, 20, 5, 1, 50, 40, 30],
    })  # fmt: skip
    return Catalog.from_movies(movies, k=2, depth=depth)


def ratings(pairs: list[tuple[int, int]]) -> pd.DataFrame:
    users, movies = zip(*pairs, strict=True)
    return pd.DataFrame(
        {
            "userId": np.array(users, np.uint32),
            "movieId": np.array(movies, np.uint32),
            "rating": np.full(len(pairs), 4.0, np.float32),
        }
    )


def test_favorite_is_the_cluster_with_most_rated_movies():
    fav = favorites(ratings([(1, 1), (1, 5), (1, 6), (2, 1), (2, 2), (2, 7)]), catalog())
    assert fav["favorite_cluster"].tolist() == [1, 0]
    assert fav[["n_c0", "n_c1"]].to_numpy().tolist() == [[1, 2], [2, 1]]
    assert fav["n_ratings"].tolist() == [3, 3]


def test_tie_goes_to_the_lowest_cluster_id():
    fav = favorites(ratings([(9, 5), (9, 1)]), catalog())
    assert fav["favorite_cluster"].tolist() == [0]


def test_lists_rank_by_score_and_skip_seen_movies():
    _, recs = recommend_users(ratings([(1, 2), (1, 3), (1, 4)]), catalog(depth=2))
    # favorite cluster 0; unseen there: movie 1 only, then the most popular other movies
    assert recs["movieId"].tolist() == [1, 5]
    assert recs["rank"].tolist() == [1, 2]
    assert recs["source"].tolist() == ["cluster", "popular"]


def test_popular_fallback_never_repeats_seen_movies():
    seen = [(1, 1), (1, 2), (1, 3), (1, 4), (1, 5)]
    _, recs = recommend_users(ratings(seen), catalog(depth=5))
    assert recs["movieId"].tolist() == [6, 7]  # all that is left, by rating count
    assert not set(recs["movieId"]) & {m for _, m in seen}


@pytest.mark.parametrize("user", [3, 4])
def test_one_user_gets_the_same_list_alone_as_in_a_batch(user):
    everyone = ratings([(3, 1), (3, 5), (3, 6), (4, 2), (4, 7)])
    _, batch = recommend_users(everyone, catalog())
    _, alone = recommend_users(everyone[everyone["userId"] == user], catalog())
    pd.testing.assert_frame_equal(batch[batch["userId"] == user].reset_index(drop=True), alone)


def test_cluster_counts_in_chunks_and_liked_sums_equal_the_flat_formulas(monkeypatch):
    rng = np.random.default_rng(5)
    user, movie = rng.integers(1, 30, 200).tolist(), rng.integers(1, 8, 200).tolist()
    frame = ratings(sorted(set(zip(user, movie, strict=True))))
    frame["rating"] = rng.random(len(frame)).astype(np.float32) * 5
    cat = catalog()
    rated = Rated.index(frame, cat)
    n, k = len(rated.users), cat.k
    flat = rated.codes * k + cat.cluster[rated.movie]
    monkeypatch.setattr(users, "CHUNK", 13)
    expected = np.bincount(flat, minlength=n * k).reshape(n, k)
    assert (cluster_counts(rated, cat) == expected).all()
    matrix = user_matrix(rated.codes, rated.movie, rated.rating, n, len(cat.movie_ids))
    liked = np.bincount(flat, weights=matrix.data, minlength=n * k).reshape(n, k)
    assert users._liked_per_cluster(matrix, cat).tolist() == liked.tolist()  # same order, exact
