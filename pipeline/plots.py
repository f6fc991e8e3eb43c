"""Headless plots of the clustering, for people judging whether the clusters make sense."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pipeline.analysis import pca_2d
from pipeline.io import atomic_path

SCATTER_SAMPLE = 5000


def figure(width: float, height: float) -> tuple[Figure, object]:
    """A Figure without pyplot: no global state, no GUI backend, nothing to close."""
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.subplots()


def save(fig: Figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)


def cluster_sizes(labels: np.ndarray, k: int, path: Path) -> None:
    fig, ax = figure(8, 4)
    ax.bar(range(k), np.bincount(labels, minlength=k), color="tab:blue")
    ax.set(xlabel="cluster", ylabel="movies", title="Movies per cluster", xticks=range(k))
    save(fig, path)


def pca_scatter(X: np.ndarray, labels: np.ndarray, path: Path, random_state: int) -> None:
    rows, xy = pca_2d(X, SCATTER_SAMPLE, random_state)
    fig, ax = figure(7, 6)
    points = ax.scatter(xy[:, 0], xy[:, 1], c=labels[rows], cmap="tab10", s=6, alpha=0.7)
    ax.legend(*points.legend_elements(), title="cluster", loc="best", fontsize="small")
    ax.set(xlabel="PC 1", ylabel="PC 2", title=f"Movies in 2-D PCA ({len(rows)} shown)")
    save(fig, path)


def genre_heatmap(share: pd.DataFrame, path: Path) -> None:
    fig, ax = figure(max(8, 0.5 * share.shape[1]), 0.5 * len(share) + 2)
    image = ax.imshow(share.to_numpy(), aspect="auto", cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(share.shape[1]), share.columns, rotation=60, ha="right")
    ax.set_yticks(range(len(share)), share.index)
    ax.set(xlabel="genre", ylabel="cluster", title="Share of each cluster's movies per genre")
    fig.colorbar(image, ax=ax, label="share")
    save(fig, path)
