from cache.reasons import Reasons

# What the reader calls each cluster: its name, or its leading genres for a version without.
GENRES = {0: "(Drama, Crime, Thriller)", 1: "(Comedy)", 2: "(no dominant genre)"}


def test_a_named_cluster_is_called_by_its_name():
    user = {"counts": [9, 1, 5]}
    named = {0: '"1990s · Crime & Thriller"'}
    assert Reasons(user, named)(0, "cluster") == (
        'from cluster 0 "1990s · Crime & Thriller", your top cluster by how many of its movies '
        "you rated"
    )


def test_reason_ranks_the_cluster_by_liking_when_cached():
    user = {"counts": [9, 1, 5], "liking": [1.0, 3.0, 2.0]}
    assert Reasons(user, GENRES)(1, "cluster") == (
        "from cluster 1 (Comedy), your top cluster by how you rated its movies"
    )
    assert Reasons(user, GENRES)(2, "cluster") == (
        "from cluster 2 (no dominant genre), your second cluster by how you rated its movies"
    )


def test_reason_falls_back_to_counts_and_breaks_ties_by_lowest_id():
    user = {"counts": [4, 4, 1]}
    assert Reasons(user, GENRES)(0, "cluster") == (
        "from cluster 0 (Drama, Crime, Thriller), your top cluster by how many of its movies "
        "you rated"
    )
    assert "your second cluster" in Reasons(user, GENRES)(1, "cluster")


def test_popular_items_say_so():
    assert Reasons({"counts": [0, 1, 0]}, GENRES)(1, "popular").startswith("popular with everyone")


def test_a_list_from_few_ratings_says_so():
    user = {"counts": [1, 2, 0], "liking": [0.5, 2.0, 0.0], "n_ratings": 3}
    assert Reasons(user, GENRES, first_ratings=True)(1, "cluster") == (
        "from cluster 1 (Comedy), your top cluster by how you rated its movies, "
        "from your first 3 ratings"
    )
    assert "first" not in Reasons(user, GENRES, first_ratings=False)(1, "cluster")


def test_an_opening_pick_from_beyond_the_users_clusters_says_so():
    """The opening reaches clusters beyond the user's two for as long as it lasts, past the
    first ratings too; such a movie is not from the user's "number 3" cluster."""
    user = {"counts": [1, 2, 0], "liking": [0.5, 2.0, 0.0], "n_ratings": 3}
    assert Reasons(user, GENRES, first_ratings=True, own_clusters=2)(2, "cluster") == (
        "from cluster 2 (no dominant genre), liked by many, beyond your clusters, "
        "from your first 3 ratings"
    )
    many = {"counts": [30, 20, 1], "liking": [9.0, 8.0, 0.5], "n_ratings": 51}
    assert Reasons(many, GENRES, own_clusters=2)(2, "cluster") == (
        "from cluster 2 (no dominant genre), liked by many, beyond your clusters"
    )
    assert "your second cluster" in Reasons(many, GENRES, own_clusters=2)(1, "cluster")
    assert "your third cluster" in Reasons(many, GENRES)(2, "cluster")  # favorite-cluster
