"""Placing a movie added over HTTP into a cluster with the live version's saved model.

The model is what the team document keeps it for. It is loaded once per web process and
version, on the first movie added, so serving processes that never add one stay light.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from cache.reader import ActiveModel
from pipeline.artifacts import VersionFolder


class ModelCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded: tuple[str, Any] | None = None

    def cluster_of(self, active: ActiveModel, genres: str) -> int:
        """The cluster the version's model gives a movie with these genres and no ratings yet."""
        from pipeline.model import assign_movie

        return assign_movie(self._model(active), genres)

    def _model(self, active: ActiveModel) -> Any:
        with self._lock:
            if self._loaded is None or self._loaded[0] != active.version:
                import joblib

                folder = VersionFolder(Path(active.meta["version_dir"]))
                self._loaded = (active.version, joblib.load(folder.model))
            return self._loaded[1]
