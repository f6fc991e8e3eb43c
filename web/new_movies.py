"""Placing a movie added over HTTP into a cluster with the live version's saved model.

The model is what the team document keeps it for. It is loaded once per web process and
version, on the first movie added, so serving processes that never add one stay light. The
default format, ONNX, needs numpy and onnxruntime only; either format is loaded through
`pipeline.model.loader.load_model`, which refuses a file whose checksum does not match.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from cache.reader import ActiveModel
from pipeline.artifacts import DEFAULT_MODEL_FORMAT, TRAINED, VersionFolder
from store.objects import StoreMissing, StoreUnavailable
from store.versions import VersionStore
from web.errors import ApiError

log = logging.getLogger(__name__)


STORE_UNREACHABLE = "the version store holding the model is unreachable; try again shortly"
UNREACHABLE_SECONDS = 5.0  # after a store failure, answer 503 at once for this long


class ModelCache:
    def __init__(self, store: VersionStore, model_format: str = DEFAULT_MODEL_FORMAT) -> None:
        self.store = store
        self.model_format = model_format
        self._unreachable_until = 0.0
        self._lock = threading.Lock()
        self._loaded: tuple[str, Any] | None = None

    def cluster_of(self, active: ActiveModel, genres: str) -> int:
        """The cluster the version's model gives a movie with these genres and no ratings yet."""
        from pipeline.model.loader import assign_movie

        return assign_movie(self._model(active), genres)

    def _model(self, active: ActiveModel) -> Any:
        with self._lock:
            if self._loaded is None or self._loaded[0] != active.version:
                self._loaded = (active.version, self._load(active))
            return self._loaded[1]

    def _load(self, active: ActiveModel) -> Any:
        """503 when the model cannot be had or trusted; the details (paths) go to the log only.

        The files come from the version store, once per host: while the store is unreachable a
        host that has them cached still places movies."""
        from pipeline.model.loader import ModelFileError, load_model

        names = (VersionFolder.METADATA, VersionFolder.MODEL_FILES[self.model_format])
        if time.monotonic() < self._unreachable_until:  # requests queued behind a failure
            raise ApiError(503, STORE_UNREACHABLE)
        try:
            folder = self.store.fetch(active.version, names, TRAINED)
        except StoreUnavailable as error:
            log.error("cannot place new movies: %s", error)
            self._unreachable_until = time.monotonic() + UNREACHABLE_SECONDS
            raise ApiError(503, STORE_UNREACHABLE) from error
        except StoreMissing as error:  # never sealed, or pruned meanwhile
            raise self._unusable(active, error) from error
        try:
            return load_model(folder, self.model_format)
        except ModelFileError as error:
            raise self._unusable(active, error) from error

    @staticmethod
    def _unusable(active: ActiveModel, error: Exception) -> ApiError:
        log.error("cannot place new movies: %s", error)
        return ApiError(
            503,
            f"the live version {active.version} has no usable model to place new movies; "
            "retrain it (POST /jobs/retrain)",
        )
