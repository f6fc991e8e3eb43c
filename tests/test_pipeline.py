"""The whole pipeline on the synthetic MovieLens folder: schemas and invariants of every
artifact."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest

from pipeline.model.loader import assign_movie
from pipeline.plots.side_process import ClusterPlots, draw, plots_of, start_plot_process
from pipeline.run import PipelineParams, run_pipeline, train

CSV_COLUMNS = {
    "cleaned_movies.csv": ["movieId", "title", "genres"],
    "cleaned_ratings.csv": ["userId", "movieId", "rating", "timestamp"],
    "cleaned_tags.csv": ["userId", "movieId", "tag", "filtered"],
    "standardized_ratings.csv": ["userId", "movieId", "rating", "rating_std"],
    "processed_tags.csv": ["movieId", "tag", "count"],
    "clusters_movies.csv": ["movieId", "title", "genres", "cluster"],
}


@pytest.fixture(scope="module")
def out(small_run) -> Path:
    return small_run.folder.path.parent.parent


@pytest.mark.parametrize(("name", "columns"), CSV_COLUMNS.items())
def test_csv_artifacts_have_their_columns(out, name, columns):
    assert pd.read_csv(out / name, nrows=5).columns.tolist() == columns


def test_counts_match_the_release(small_run, small_shape):
    assert small_run.metadata["counts"] == {
        "movies": small_shape.movies,
        "ratings": small_shape.ratings,
        "users": small_shape.users,
        "tags": small_shape.tags,
    }


def test_every_movie_has_a_cluster(out, small_shape):
    clusters = pd.read_csv(out / "clusters_movies.csv")
    assert len(clusters) == small_shape.movies
    assert clusters["cluster"].between(0, 9).all()


def test_every_user_has_a_favorite(out, small_shape):
    fav = pd.read_csv(out / "user_favorites.csv")
    assert len(fav) == small_shape.users and fav["userId"].is_unique
    counts = fav[[f"n_c{c}" for c in range(10)]].to_numpy()
    assert (counts.sum(axis=1) == fav["n_ratings"]).all()
    assert (counts.argmax(axis=1) == fav["favorite_cluster"]).all()  # the spec's rule
    liked = fav[[f"w_c{c}" for c in range(10)]].to_numpy()
    assert (liked >= 0).all() and (liked.sum(axis=1) > 0).all()


def test_user_lists_are_full_ranked_and_unseen(out, small_shape):
    recs = pd.read_parquet(out / "user_recommendations.parquet")
    ratings = pd.read_parquet(out / "cleaned_ratings.parquet")
    users = small_shape.users
    depth = PipelineParams().stored_depth  # the 50 a client may ask for, and the spares
    assert recs.groupby("userId").size().eq(depth).all() and recs["userId"].nunique() == users
    ranks = [list(range(1, depth + 1))] * users
    assert (recs.groupby("userId")["rank"].apply(list) == ranks).all()
    seen = recs.merge(ratings, on=["userId", "movieId"])
    assert seen.empty, "a list recommends a movie its user already rated"
    fav = pd.read_csv(out / "user_favorites.csv").set_index("userId")
    liked = fav[[f"w_c{c}" for c in range(10)]].to_numpy()
    top2 = np.argsort(-liked, axis=1, kind="stable")[:, :2]  # the clusters each user liked most
    from_cluster = recs[recs["source"] == "cluster"]
    mine = top2[fav.index.get_indexer(from_cluster["userId"])]
    assert (mine == from_cluster["cluster"].to_numpy()[:, None]).any(axis=1).all()


def test_similar_lists_stay_in_cluster_and_skip_the_movie_itself(small_run):
    similar = pd.read_parquet(small_run.folder.path / "movie_similar.parquet")
    movies = pd.read_parquet(small_run.folder.path / "movies.parquet").set_index("movieId")
    assert (similar["movieId"] != similar["similarId"]).all()
    cluster = movies["cluster"]
    assert (
        cluster[similar["movieId"]].to_numpy() == cluster[similar["similarId"]].to_numpy()
    ).all()
    assert similar.groupby("movieId").size().max() == PipelineParams().stored_depth


def test_cluster_summary(out, small_shape):
    summary = json.loads((out / "cluster_summary.json").read_text())
    assert [c["cluster"] for c in summary] == list(range(10))
    assert sum(c["size"] for c in summary) == small_shape.movies
    assert sum(c["n_ratings"] for c in summary) == small_shape.ratings
    for cluster in summary:
        shares = [g["share"] for g in cluster["top_genres"]]
        assert len(shares) <= 5 and shares == sorted(shares, reverse=True)
        assert 0.5 <= cluster["avg_rating"] <= 5.0


def test_metadata_and_version_folder(small_run, out):
    meta = json.loads((small_run.folder.path / "metadata.json").read_text())
    assert meta["version"] == small_run.version == (out / "models" / "LATEST").read_text().strip()
    assert len(meta["data_fingerprint"]) == 64
    assert meta["parameters"]["k"] == 10 and meta["parameters"]["random_state"] == 42
    assert set(meta["metrics"]) >= {
        "inertia",
        "silhouette_sampled",
        "davies_bouldin",
        "cluster_sizes",
    }
    assert {"numpy", "pandas", "scikit-learn"} <= set(meta["library_versions"])


def test_plots_are_pngs(out):
    for name in ("cluster_sizes", "cluster_pca", "genre_share"):
        assert (out / "plots" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_saved_model_places_movies(small_run, out):
    model = joblib.load(out / "kmeans_model.pkl")
    assert 0 <= assign_movie(model, "Animation|Children|Comedy") < 10
    movies = pd.read_parquet(small_run.folder.path / "movies.parquet").sample(50, random_state=1)
    factors = movies.filter(like="factor_").to_numpy()
    for movie, embedding in zip(movies.itertuples(), factors, strict=True):
        # a catalogue movie described afresh lands in the cluster the run gave it
        rating = None if np.isnan(movie.avg_rating) else movie.avg_rating
        cluster = assign_movie(model, movie.genres, rating, movie.n_ratings, factors=embedding)
        assert cluster == movie.cluster


def test_two_runs_give_identical_artifacts(small_data, small_run, tmp_path):
    again = run_pipeline(small_data, tmp_path)
    first = small_run.folder.path.parent.parent
    for name in [*CSV_COLUMNS, "user_favorites.csv", "cluster_summary.json"]:
        assert (first / name).read_bytes() == (tmp_path / name).read_bytes(), name
    for name in (
        "user_recommendations.parquet",
        "movie_similar.parquet",
        "popular.parquet",
        "movies.parquet",
    ):
        pd.testing.assert_frame_equal(
            pd.read_parquet(small_run.folder.path / name), pd.read_parquet(again.folder.path / name)
        )


def test_train_leaves_users_to_the_serving_side(small_data, tmp_path):
    complete = run_pipeline(small_data, tmp_path, PipelineParams(plots=False))
    result = train(small_data, tmp_path, PipelineParams(plots=False))
    assert not (tmp_path / "user_recommendations.parquet").exists(), "stale lists left behind"
    assert (result.folder.path / "ratings.parquet").is_file()
    assert not (result.folder.path / "user_recommendations.parquet").exists()
    latest = (tmp_path / "models" / "LATEST").read_text().strip()
    assert latest == complete.version, "LATEST must name complete versions only"
    assert "users" not in result.timings


def test_choose_k_picks_from_the_range(small_data, tmp_path):
    result = run_pipeline(small_data, tmp_path, PipelineParams(choose_k=(4, 5, 6), plots=False))
    scores = result.metadata["metrics"]["silhouette_by_k"]
    assert set(scores) == {"4", "5", "6"}
    assert result.metadata["parameters"]["k"] == int(max(scores, key=scores.get))
    assert np.unique(pd.read_parquet(result.folder.path / "movies.parquet")["cluster"]).size <= 6


def test_the_thread_count_changes_no_cluster_and_no_list(small_data, monkeypatch):
    """Small data is built on one thread; the default thread pools give the same clusters,
    lists and similar-movie scores (the order among exactly tied neighbours may differ, as it
    does between machines with different numbers of cores)."""
    from pipeline import run
    from pipeline.data.cleaning import clean
    from pipeline.data.readers import read_dataset

    data = clean(read_dataset(small_data))
    one = run.build(data, PipelineParams())
    monkeypatch.setattr(run, "SINGLE_THREAD_BELOW", 0)
    default = run.build(data, PipelineParams())
    pd.testing.assert_frame_equal(one.movies, default.movies)
    pd.testing.assert_frame_equal(one.popular, default.popular)
    pd.testing.assert_frame_equal(one.users.recommendations, default.users.recommendations)
    columns = ["movieId", "rank", "score"]
    pd.testing.assert_frame_equal(one.similar[columns], default.similar[columns])
    assert one.metrics["inertia"] == pytest.approx(default.metrics["inertia"], rel=1e-9)


def test_the_clusters_are_handed_on_before_the_lists_are_built(small_data):
    """What needs only the clusters (the plots) starts while the lists are still computing."""
    from pipeline import run
    from pipeline.data.cleaning import clean
    from pipeline.data.readers import read_dataset

    events, handed = [], []

    def clustered(movies):
        events.append("handed on")
        handed.append(movies)

    stages = run.Stages(lambda name, _: events.append(name), run.STAGES)
    built = run.build(clean(read_dataset(small_data)), PipelineParams(), stages, True, clustered)
    assert events.index("cluster") < events.index("handed on") < events.index("lists")
    assert len(handed) == 1
    assert handed[0].k == built.k
    np.testing.assert_array_equal(handed[0].X, built.X)
    np.testing.assert_array_equal(handed[0].movies["cluster"], built.movies["cluster"])


def test_a_run_that_fails_after_clustering_leaves_the_plots_it_would_replace(
    small_data, tmp_path, monkeypatch
):
    """The plots are drawn while the lists are computed, but written only once every stage
    has worked."""
    from pipeline import run

    plots = tmp_path / "plots"
    plots.mkdir()
    earlier = {name: f"earlier {name}".encode() for name in ("cluster_sizes", "genre_share")}
    for name, image in earlier.items():
        (plots / f"{name}.png").write_bytes(image)

    def broken(*args, **kwargs):
        raise RuntimeError("the lists failed")

    monkeypatch.setattr(run, "similar_movies", broken)
    with pytest.raises(RuntimeError, match="the lists failed"):
        run.run_pipeline(small_data, tmp_path)
    assert {p.stem: p.read_bytes() for p in plots.iterdir()} == earlier


ORPHANING = """
import os, sys, time
from pipeline.plots.side_process import start_plot_process
if __name__ == "__main__":
    pool = start_plot_process()
    print(pool.submit(os.getpid).result(), flush=True)
    time.sleep(60)
"""


def test_the_plot_process_leaves_when_the_pipeline_is_killed(tmp_path):
    """SIGKILL gives the pipeline no chance to shut its pool down: the plot process must not
    stay behind, waiting for work."""
    script = tmp_path / "orphaning.py"
    script.write_text(ORPHANING)
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while _running(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(child)


def _running(pid: int) -> bool:
    """Alive and not a zombie (whoever adopted it may not have reaped it yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_a_dead_plot_process_costs_the_plots_nothing():
    """The plot process killed before (or while) it draws: the PNGs are drawn here instead,
    the same bytes it would have sent."""
    labels = np.array([0, 1, 1, 2])
    genres, names = ["Drama", "Comedy", "War"], ["1990s · Drama", "Comedy", "War · acclaimed"]
    data = ClusterPlots(labels, 3, labels, np.arange(8.0).reshape(4, 2), np.eye(3), genres, names)
    with start_plot_process() as pool:
        pool.submit(os._exit, 1)  # the child dies; the pool is broken from then on
        images = plots_of(pool, data)()
    assert images == draw(data)
    assert set(images) == {"cluster_sizes", "cluster_pca", "genre_share"}
