"""Cluster names: distinct, built from what sets each cluster apart, and kept across retrains
on nearly the same data, with the clusters' ids."""

from __future__ import annotations

import json
import shutil
from itertools import combinations

import numpy as np
import pandas as pd
import pytest

from pipeline.clusters.alignment import Previous, align, relabel_model
from pipeline.clusters.names import ClusterName
from pipeline.clusters.titles import describe, spoken_title
from pipeline.run import PipelineParams, run_pipeline


def summaries(run) -> list[dict]:
    return json.loads(run.folder.summary.read_text())


def assert_readable_and_distinct(found: list[dict]) -> None:
    names = [s["name"] for s in found]
    assert len(set(names)) == len(names), names
    for one, other in combinations(found, 2):
        shared = set(one["descriptors"]) & set(other["descriptors"])
        assert len(shared) <= 1, (one["name"], other["name"])
    for s in found:
        assert 1 <= len(s["descriptors"]) <= 3 and len(s["name"]) <= 60, s["name"]
        assert s["description"].startswith("like "), s["description"]


def test_names_are_distinct_on_the_synthetic_data(small_run):
    assert_readable_and_distinct(summaries(small_run))


def test_names_are_distinct_on_the_real_sample(sample_run):
    found = summaries(sample_run)
    assert_readable_and_distinct(found)
    # Drama and Comedy lead almost every cluster by share: a name leads with what sets it apart
    assert sum("Drama" in s["name"] or "Comedy" in s["name"] for s in found) <= len(found) // 2


def test_a_retrain_on_data_one_percent_apart_keeps_every_id_and_name(small_data, tmp_path):
    first = run_pipeline(small_data, tmp_path / "a", PipelineParams(plots=False))
    changed = tmp_path / "data"
    shutil.copytree(small_data, changed)
    ratings = pd.read_csv(changed / "ratings.csv")
    ratings.sample(frac=0.99, random_state=1).sort_index().to_csv(
        changed / "ratings.csv", index=False
    )
    second = run_pipeline(
        changed, tmp_path / "b", PipelineParams(plots=False), previous=first.folder
    )
    before, after = summaries(first), summaries(second)
    assert [s["name"] for s in after] == [s["name"] for s in before]
    old = pd.read_parquet(first.folder.movies).set_index("movieId")["cluster"]
    new = pd.read_parquet(second.folder.movies).set_index("movieId")["cluster"]
    # most movies keep their cluster's id (k-means moves some at the margins of clusters)
    assert (old.reindex(new.index) == new).mean() > 0.75


def test_alignment_gives_each_new_cluster_the_id_of_the_one_it_matches():
    ids = np.arange(100)
    old = pd.Series(ids // 25, index=ids)  # four clusters of 25 movies
    new = (3 - ids // 25) % 4  # the same clusters, other ids
    new[:2] = (new[:2] + 1) % 4  # two movies moved
    names = {c: ClusterName(f"name {c}", "like X", [f"d{c}"]) for c in range(4)}
    found = align(new, ids, 4, Previous(old, names))
    assert (found.relabel[new] == old.to_numpy()).mean() == 0.98
    assert found.kept == names  # every cluster kept most of its movies


def test_a_relabelled_model_predicts_the_new_ids():
    from sklearn.cluster import KMeans
    from sklearn.pipeline import Pipeline

    X = np.array([[0.0], [0.1], [5.0], [5.1], [9.0], [9.1]])
    model = Pipeline([("cluster", KMeans(3, n_init=1, random_state=0))]).fit(X)
    before = model.predict(X)
    relabel = np.array([2, 0, 1])
    relabel_model(model, relabel)
    assert (model.predict(X) == relabel[before]).all()


@pytest.mark.parametrize(
    ("title", "said"),
    [
        ("Matrix, The (1999)", "The Matrix"),
        ("Trial, The (Procès, Le) (1962)", "The Trial"),
        ("Jules and Jim (Jules et Jim) (1961)", "Jules and Jim"),
        ("Toy Story (1995)", "Toy Story"),
    ],
)
def test_titles_are_said_as_people_say_them(title, said):
    assert spoken_title(title) == said


def test_a_description_names_the_exemplars():
    assert describe(["Fargo (1996)", "Se7en (a.k.a. Seven) (1995)", "Matrix, The (1999)"]) == (
        "like Fargo, Se7en and The Matrix"
    )
