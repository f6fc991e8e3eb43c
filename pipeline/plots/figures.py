"""Headless plots, for people judging whether the clusters and the lists make sense.

Figures come from plain arrays, so the process that draws the cluster plots
(`pipeline.plots.side_process`) loads nothing but numpy and matplotlib.
"""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure


def figure(width: float, height: float) -> tuple[Figure, object]:
    """A Figure without pyplot: no global state, no GUI backend, nothing to close."""
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.subplots()


def png(fig: Figure) -> bytes:
    buffer = BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def save(fig: Figure, path: Path) -> None:
    from pipeline.io import write_bytes

    write_bytes(png(fig), path)


def cluster_sizes(labels: np.ndarray, names: list[str]) -> Figure:
    """One bar per cluster, labelled "id · name"."""
    k = len(names)
    fig, ax = figure(8, 0.4 * k + 1.5)
    ax.barh(range(k), np.bincount(labels, minlength=k), color="tab:blue")
    ax.set_yticks(range(k), named_ticks(names))
    ax.invert_yaxis()
    ax.set(xlabel="movies", title="Movies per cluster")
    return fig


def named_ticks(names: list[str]) -> list[str]:
    return [f"{i} · {name}" for i, name in enumerate(names)]


def pca_scatter(xy: np.ndarray, labels: np.ndarray) -> Figure:
    fig, ax = figure(7, 6)
    points = ax.scatter(xy[:, 0], xy[:, 1], c=labels, cmap="tab10", s=6, alpha=0.7)
    ax.legend(*points.legend_elements(), title="cluster", loc="best", fontsize="small")
    ax.set(xlabel="PC 1", ylabel="PC 2", title=f"Movies in 2-D PCA ({len(xy)} shown)")
    return fig


def genre_heatmap(share: np.ndarray, genres: list[str], names: list[str]) -> Figure:
    """`share`: clusters x genres, cluster i in row i, named `names[i]`."""
    fig, ax = figure(max(10, 0.5 * share.shape[1] + 3), 0.5 * len(share) + 2)
    image = ax.imshow(share, aspect="auto", cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(share.shape[1]), genres, rotation=60, ha="right")
    ax.set_yticks(range(len(share)), named_ticks(names))
    ax.set(xlabel="genre", title="Share of each cluster's movies per genre")
    fig.colorbar(image, ax=ax, label="share")
    return fig
