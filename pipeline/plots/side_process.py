"""The cluster plots drawn in a second process while the pipeline computes.

Drawing takes matplotlib's import and then pure-Python layout and rendering, under this
process's one interpreter lock: a spawned interpreter does both on the other core instead. It is
started when a run starts, so its imports overlap the first stages; the figures come back as PNG
bytes, which the run writes with its other artifacts. Nothing here loads matplotlib in the
calling process.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import numpy as np

SCATTER_SAMPLE = 5000  # movies in the PCA scatter


class ClusterPlots(NamedTuple):
    """What the cluster plots show, as arrays: cheap to send to another process."""

    labels: np.ndarray  # each movie's cluster
    k: int
    scatter_labels: np.ndarray  # the clusters of the movies in the PCA sample
    scatter_xy: np.ndarray  # their first two principal components
    genre_share: np.ndarray  # clusters x genres, cluster i in row i
    genres: list[str]
    names: list[str]  # cluster i's name at i


def draw(data: ClusterPlots) -> dict[str, bytes]:
    """{plot name: PNG}, under the names `OutputFolder.plot` takes."""
    from pipeline.plots import figures as plots

    return {
        "cluster_sizes": plots.png(plots.cluster_sizes(data.labels, data.names)),
        "cluster_pca": plots.png(plots.pca_scatter(data.scatter_xy, data.scatter_labels)),
        "genre_share": plots.png(plots.genre_heatmap(data.genre_share, data.genres, data.names)),
    }


def _load_plotting() -> None:
    """The plot process's first task: the imports, the slow part of drawing. What they made
    lives as long as the process, which exits through the interpreter's full shutdown."""
    from pipeline.process.collector import collector_paused, freeze_survivors

    with collector_paused():
        from pipeline.plots import figures as plots  # noqa: F401
    freeze_survivors()


def _exit_with_parent() -> None:
    """The plot process's initializer. A pipeline killed outright (SIGKILL, out of memory)
    cannot shut its pool down, and the pool's worker would wait for tasks for ever: it leaves
    as soon as its parent's sentinel says the parent is gone."""
    parent = multiprocessing.parent_process()

    def leave_when_orphaned() -> None:
        parent.join()
        os._exit(1)

    threading.Thread(target=leave_when_orphaned, name="parent-watch", daemon=True).start()


def start_plot_process() -> ProcessPoolExecutor:
    """One spawned interpreter (not forked: the pipeline's thread pools do not survive a fork),
    already importing matplotlib; submit `draw` to it."""
    pool = ProcessPoolExecutor(
        max_workers=1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_exit_with_parent,
    )
    pool.submit(_load_plotting)
    return pool


def plots_of(pool: ProcessPoolExecutor, data: ClusterPlots) -> Callable[[], dict[str, bytes]]:
    """`draw(data)` sent to the plot process; call the result for the PNGs. Should that
    process have died (killed, out of memory), they are drawn in the calling thread instead:
    a lost helper costs time, not the run."""
    try:
        future = pool.submit(draw, data)
    except BrokenProcessPool:
        return lambda: draw(data)

    def result() -> dict[str, bytes]:
        try:
            return future.result()
        except BrokenProcessPool:
            return draw(data)

    return result
