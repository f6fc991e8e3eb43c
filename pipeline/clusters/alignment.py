"""Keeping cluster ids and names across retrains. k-means starts from where the previous
version's clusters lie in the new features; the new clusters are then matched to the previous
ones by the movies they share (the assignment that maximises the overlap) and take their ids,
and one that kept most of its members (a Jaccard overlap of KEEP_NAME) keeps its name too. A
weekly retrain on nearly the same data then shows the same clusters under the same names."""

from __future__ import annotations

import json
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.pipeline import Pipeline

from pipeline.artifacts import VersionFolder
from pipeline.clusters.names import ClusterName

KEEP_NAME = 0.4  # the Jaccard overlap of members from which a cluster keeps its name


class Previous(NamedTuple):
    """What a retrain keeps of the version before it."""

    clusters: pd.Series  # movieId -> cluster
    names: dict[int, ClusterName]


class Alignment(NamedTuple):
    relabel: np.ndarray  # new label -> the id it takes
    kept: dict[int, ClusterName]  # id -> the previous name it keeps


def read_previous(folder: VersionFolder | None) -> Previous | None:
    """None when there is no previous version, or it lacks its clusters."""
    if folder is None or not folder.movies.is_file() or not folder.summary.is_file():
        return None
    movies = pd.read_parquet(folder.movies, columns=["movieId", "cluster"])
    summary = json.loads(folder.summary.read_text())
    names = {
        int(s["cluster"]): ClusterName(s["name"], s["description"], s.get("descriptors", []))
        for s in summary
        if s.get("name")
    }
    return Previous(movies.set_index("movieId")["cluster"], names)


def warm_start(
    X: np.ndarray, movie_ids: np.ndarray, k: int, previous: Previous
) -> np.ndarray | None:
    """Starting centres for k-means: where the previous version's clusters lie in the new
    features (the mean of their movies' rows), so that the fit settles near the partition it
    had, under the same ids. The features themselves move between trainings (the factors, the
    scaling), so the previous centres could not be reused as they are. None when the previous
    version had another k or lost a cluster's movies."""
    old = previous.clusters.reindex(movie_ids).to_numpy()
    known = ~np.isnan(old)
    if not known.any() or int(np.nanmax(old)) + 1 != k:
        return None
    members = old[known].astype(np.int64)
    counts = np.bincount(members, minlength=k)
    if (counts == 0).any():
        return None
    sums = np.zeros((k, X.shape[1]))
    np.add.at(sums, members, X[known])
    return sums / counts[:, None]


def align(labels: np.ndarray, movie_ids: np.ndarray, k: int, previous: Previous) -> Alignment:
    """Which id each new cluster takes, and which previous names carry over."""
    old = previous.clusters.reindex(movie_ids).to_numpy()
    common = ~np.isnan(old)
    k_old = int(np.nanmax(old)) + 1 if common.any() else 0
    overlap = np.zeros((k, max(k_old, 1)), np.int64)
    np.add.at(overlap, (labels[common], old[common].astype(np.int64)), 1)
    rows, cols = linear_sum_assignment(-overlap)
    relabel = np.full(k, -1, np.int64)
    for new, taken in zip(rows, cols, strict=True):
        if taken < k and overlap[new, taken] > 0:
            relabel[new] = taken
    free = iter(sorted(set(range(k)) - set(relabel[relabel >= 0].tolist())))
    for new in np.flatnonzero(relabel < 0):
        relabel[new] = next(free)
    new_sizes = np.bincount(labels, minlength=k)
    old_sizes = np.bincount(old[common].astype(np.int64), minlength=k_old)
    kept = {}
    for new in range(k):
        taken = int(relabel[new])
        if taken >= k_old or taken not in previous.names:
            continue
        shared = overlap[new, taken]
        jaccard = shared / (new_sizes[new] + old_sizes[taken] - shared)
        if jaccard >= KEEP_NAME:
            kept[taken] = previous.names[taken]
    return Alignment(relabel, kept)


def relabel_model(model: Pipeline, relabel: np.ndarray) -> None:
    """The fitted k-means gives the new ids: its centres reordered (and its labels renamed)."""
    kmeans = model[-1]
    centers = np.empty_like(kmeans.cluster_centers_)
    centers[relabel] = kmeans.cluster_centers_
    kmeans.cluster_centers_ = centers
    if hasattr(kmeans, "labels_"):
        kmeans.labels_ = relabel[kmeans.labels_]
