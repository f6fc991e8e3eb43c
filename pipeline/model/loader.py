"""A version's model on disk, read back one verified way (`pipeline.model.export` writes both
formats with their checksums).

`kmeans_model.pkl` is the fitted scikit-learn Pipeline pickled by joblib. Unpickling runs code,
so `load_model` reads a model file only from inside its version folder and only when its sha256
is the one `metadata.json` records (`model_files`); versions written before that record have no
checksums and are refused (retraining writes them). `kmeans_model.onnx` is the same model as an
ONNX graph (`pipeline.model.export`), loading it runs no code; `OnnxModel` does the string part
of the features, splitting genres and tags into the fitted vocabularies, with numpy alone, so the
web process places a movie without pandas or scikit-learn.

Of the heavy libraries this module imports only numpy; joblib, onnxruntime and skl2onnx are
imported when used.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from pipeline.artifacts import DEFAULT_MODEL_FORMAT, ONNX, VersionFolder
from pipeline.errors import MovierecError
from pipeline.model.contract import (
    AVG_RATING,
    CLUSTER,
    FACTORS,
    GENRES,
    N_RATINGS,
    TAGS,
    VOCABULARIES,
)

RETRAIN = "retrain it (`movierec pipeline`, or POST /jobs/retrain) to write checksummed models"

Movies = Mapping[str, Any]  # columns by name: a DataFrame, or a dict of equal-length lists


class ModelFileError(MovierecError):
    """A model file that is not loaded: missing, outside its version folder, or without a
    matching checksum in the folder's metadata."""


class ClusterModel(Protocol):
    """What `load_model` returns in either format: movies in, cluster labels out."""

    def predict(self, movies: Movies) -> np.ndarray: ...


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_model(folder: VersionFolder, model_format: str = DEFAULT_MODEL_FORMAT) -> ClusterModel:
    """The version's model, from the very bytes whose checksum was verified."""
    data = _verified_bytes(folder, folder.model_file(model_format))
    if model_format == ONNX:
        return OnnxModel.from_bytes(data)
    import joblib

    return joblib.load(BytesIO(data))


def _verified_bytes(folder: VersionFolder, path: Path) -> bytes:
    """`path`'s content, if it lies in `folder` and matches the sha256 recorded there."""
    if path.resolve().parent != folder.path.resolve():
        raise ModelFileError(f"{path} lies outside the version folder {folder.path}; not loaded")
    if not folder.metadata.is_file():
        raise ModelFileError(f"{folder.path} is not a model version (no {folder.metadata.name})")
    recorded = folder.read_metadata().get("model_files", {}).get(path.name)
    if recorded is None:
        raise ModelFileError(
            f"version {folder.version} records no checksum for {path.name} (it was trained "
            f"before models were checksummed); {RETRAIN}"
        )
    if not path.is_file():
        raise ModelFileError(f"{path} is missing; {RETRAIN}")
    data = path.read_bytes()
    if sha256(data) != recorded:
        raise ModelFileError(
            f"{path} does not match the sha256 in {folder.metadata.name}: it changed after "
            f"training; not loaded"
        )
    return data


def assign_movie(
    model: ClusterModel,
    genres: str,
    avg_rating: float | None = None,
    n_ratings: int = 0,
    tags: str = "",
    factors: Sequence[float] | None = None,
) -> int:
    """Cluster of a movie the model has not seen; a new movie usually has no ratings yet, and
    without `factors` (its collaborative embedding) it is placed by genres and statistics."""
    row = {
        GENRES: [genres],
        AVG_RATING: [math.nan if avg_rating is None else float(avg_rating)],
        N_RATINGS: [n_ratings],
        TAGS: [tags],
    }
    if factors is not None:
        from pipeline.features.factors import factor_columns  # offline callers only: it loads scipy

        names = factor_columns(len(factors))
        row |= {name: [float(value)] for name, value in zip(names, factors, strict=True)}
    return int(model.predict(row)[0])


@dataclass(frozen=True)
class OnnxModel:
    """The ONNX graph and the fitted vocabularies it keeps in its metadata."""

    session: Any  # onnxruntime.InferenceSession
    dtype: type  # of the graph's inputs: float64 as exported, float32 for comparisons
    genres: dict[str, int]
    tags: dict[str, int]
    tag_pattern: re.Pattern[str] | None
    factors: list[str]

    @classmethod
    def from_bytes(cls, data: bytes) -> OnnxModel:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        # Placing movies is a few small matrix products: threads would cost more than they save,
        # and the web process runs several workers already.
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        saved = json.loads(session.get_modelmeta().custom_metadata_map[VOCABULARIES])
        pattern = saved["tag_pattern"]
        inputs = {node.name: node.type for node in session.get_inputs()}
        return cls(
            session=session,
            dtype=np.float64 if inputs[GENRES] == "tensor(double)" else np.float32,
            genres={genre: i for i, genre in enumerate(saved["genres"])},
            tags={token: i for i, token in enumerate(saved["tags"])},
            tag_pattern=re.compile(pattern) if pattern else None,
            factors=saved["factors"],
        )

    def predict(self, movies: Movies) -> np.ndarray:
        """Labels of `movies`, which has MovieFeaturizer's input columns."""
        feeds = {
            GENRES: self._counts(movies[GENRES], self.genres, _genre_tokens, binary=True),
            AVG_RATING: self._column(movies[AVG_RATING]),
            N_RATINGS: self._column(movies[N_RATINGS]),
        }
        if self.tag_pattern is not None:
            feeds[TAGS] = self._counts(movies[TAGS], self.tags, self._tag_tokens)
        if self.factors:  # a movie without them (a new one) has zeros, as in MovieFeaturizer
            zeros = np.zeros(len(movies[GENRES]))
            columns = [movies.get(name, zeros) for name in self.factors]
            feeds[FACTORS] = np.column_stack(columns).astype(self.dtype)
        return self.session.run([CLUSTER], feeds)[0]

    def _column(self, values: Sequence[float]) -> np.ndarray:
        return np.asarray(values, dtype=np.float64).astype(self.dtype, copy=False).reshape(-1, 1)

    def _tag_tokens(self, text: str) -> list[str]:
        """TfidfVectorizer's default analyzer: lower case, then its token pattern."""
        return self.tag_pattern.findall(text.lower())

    def _counts(
        self,
        texts: Sequence[Any],
        vocabulary: dict[str, int],
        tokens: Callable[[str], list[str]],
        binary: bool = False,
    ) -> np.ndarray:
        """Token counts per text over a fitted vocabulary; a missing text (NaN) has none. Each
        distinct text is split once: a catalogue repeats a few hundred genre strings."""
        codes: dict[str, int] = {}
        texts = np.asarray(texts, dtype=object).ravel()
        index = [codes.setdefault(t if isinstance(t, str) else "", len(codes)) for t in texts]
        out = np.zeros((len(codes), len(vocabulary)), self.dtype)
        for row, text in enumerate(codes):  # in order of first appearance, as coded
            for token in tokens(text):
                column = vocabulary.get(token)
                if column is not None:
                    out[row, column] = 1 if binary else out[row, column] + 1
        return out[index]


def _genre_tokens(text: str) -> list[str]:
    return text.split("|")
