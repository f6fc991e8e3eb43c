"""Where every artifact lives: the one module that spells the output folder's file names.

`OutputFolder` is the top level a run leaves for people and notebooks; `ModelsFolder` holds the
version folders and `LATEST`; `VersionFolder` is one self-consistent model version, the
file-system twin of `cache.keys.VersionKeys`. docs/artifacts.md describes the contents.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from pipeline.errors import ParameterError, check_choice
from pipeline.params import PipelineParams

if TYPE_CHECKING:  # the serving side names folders without importing pandas
    import pandas as pd

VERSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
RATINGS_ROW_GROUP = 1 << 18  # a chunk task reads only the row groups of its users
# Parquet dictionaries only where ratings repeat few values: for movieId and timestamp
# pyarrow's default attempt costs three times the plain encoding's CPU and falls back anyway.
RATINGS_DICTIONARY = ["userId", "rating"]
# Every version holds its model in both formats; ONNX is the default for `movierec assign` and
# the web process: the same labels, loaded faster and without scikit-learn (BENCHMARKS.md).
ONNX, JOBLIB = "onnx", "joblib"
# A version is committed to the store in two steps, each sealed by a marker written last:
# "trained" (what chunk tasks read) and "complete" (the merged user files too).
TRAINED, COMPLETE = "trained", "complete"
REPORTS = "_reports"  # the store's folder of offline reports; never a version id (VERSION_ID)
MODEL_FORMATS = (ONNX, JOBLIB)
DEFAULT_MODEL_FORMAT = ONNX


def check_version(version: str) -> str:
    """Refuse ids that could escape a folder or a key namespace (separators, globs, colons)."""
    if not VERSION_ID.fullmatch(version):
        raise ParameterError(f"invalid model version id {version!r}")
    return version


class UserLists(NamedTuple):
    """Per-user results: favorite clusters with counts, and the ranked recommendation rows."""

    favorites: pd.DataFrame
    recommendations: pd.DataFrame


@dataclass(frozen=True)
class VersionFolder:
    """`models/<version>/`: everything the serving side publishes, and nothing else."""

    path: Path

    USER_FILES = ("user_favorites.parquet", "user_recommendations.parquet")
    CLUSTER_MAP = "cluster_map.json"  # versions before it have none
    ONBOARDING = "onboarding.parquet"  # versions before it have none
    # What each reader needs, so a host fetches no more than that from the store.
    METADATA = "metadata.json"
    CATALOG = (METADATA, "movies.parquet")  # pipeline.lists.users.load_catalog
    TRAINING_RATINGS = (METADATA, "ratings.parquet")
    SUMMARY = "cluster_summary.json"
    LISTS = (SUMMARY, "movie_similar.parquet", "popular.parquet")
    SERVED = (*CATALOG, *LISTS, CLUSTER_MAP, ONBOARDING)  # cache.writer.write_catalog
    REQUIRED = (*CATALOG, *LISTS, *USER_FILES)
    PARTS = "user_parts"
    MODEL_FILES: ClassVar[dict[str, str]] = {ONNX: "kmeans_model.onnx", JOBLIB: "kmeans_model.pkl"}
    MARKERS: ClassVar[dict[str, str]] = {TRAINED: "trained.json", COMPLETE: "complete.json"}

    @property
    def version(self) -> str:
        return self.path.name

    @property
    def metadata(self) -> Path:
        return self.path / self.METADATA

    @property
    def model(self) -> Path:
        """The fitted scikit-learn Pipeline, pickled by joblib."""
        return self.path / self.MODEL_FILES[JOBLIB]

    @property
    def onnx_model(self) -> Path:
        """The same model as an ONNX graph (`pipeline.model.loader`): loading it runs no code."""
        return self.path / self.MODEL_FILES[ONNX]

    def model_file(self, model_format: str) -> Path:
        """The model in one of MODEL_FORMATS."""
        name = self.MODEL_FILES[check_choice("model format", model_format, MODEL_FORMATS)]
        return self.path / name

    @property
    def movies(self) -> Path:
        return self.path / "movies.parquet"

    @property
    def summary(self) -> Path:
        return self.path / self.SUMMARY

    @property
    def cluster_map(self) -> Path:
        """Sampled movies in 2-D, for the dashboard; versions before it have none."""
        return self.path / self.CLUSTER_MAP

    @property
    def onboarding(self) -> Path:
        """The movies a new user is asked to rate; versions before it have none."""
        return self.path / self.ONBOARDING

    @property
    def similar(self) -> Path:
        return self.path / "movie_similar.parquet"

    @property
    def popular(self) -> Path:
        return self.path / "popular.parquet"

    @property
    def ratings(self) -> Path:
        """The cleaned ratings sorted by user, in row groups of RATINGS_ROW_GROUP."""
        return self.path / "ratings.parquet"

    @property
    def favorites(self) -> Path:
        return self.path / self.USER_FILES[0]

    @property
    def recommendations(self) -> Path:
        return self.path / self.USER_FILES[1]

    @property
    def parts(self) -> Path:
        """Chunk tasks' user files, until the publish step merges them."""
        return self.path / self.PARTS

    def marker(self, stage: str) -> Path:
        """The store's seal of a commit step, with the manifest of the files it covers."""
        return self.path / self.MARKERS[check_choice("commit step", stage, self.MARKERS)]

    def artifacts(self) -> list[Path]:
        """The version's files, without chunk parts, markers or unfinished writes."""
        markers = set(self.MARKERS.values())
        return [
            path
            for path in sorted(self.path.iterdir())
            if path.is_file() and not path.name.startswith(".") and path.name not in markers
        ]

    def missing(self) -> list[str]:
        return [name for name in self.REQUIRED if not (self.path / name).is_file()]

    def read_metadata(self) -> dict[str, Any]:
        return json.loads(self.metadata.read_text())

    def params(self, **overrides: Any) -> PipelineParams:
        return PipelineParams.from_metadata(self.read_metadata(), **overrides)

    def write_ratings(self, ratings: pd.DataFrame) -> None:
        """The ratings a version was trained on, which the next retrain reuses (db.snapshot)."""
        from pipeline import io

        io.write_parquet(
            ratings, self.ratings, row_group_size=RATINGS_ROW_GROUP, dictionary=RATINGS_DICTIONARY
        )

    def write_users(self, lists: UserLists) -> None:
        from pipeline import io

        io.write_parquet(lists.favorites, self.favorites)
        io.write_parquet(lists.recommendations, self.recommendations)

    def read_users(self) -> UserLists:
        import pandas as pd

        return UserLists(pd.read_parquet(self.favorites), pd.read_parquet(self.recommendations))


def write_user_part(parts: Path, user_lo: int, user_hi: int, lists: UserLists) -> list[Path]:
    """One chunk's two files in `parts`, named by its range: a retried chunk overwrites them."""
    from pipeline import io

    name = f"{user_lo:010d}-{user_hi:010d}"
    written = [parts / f"favorites-{name}.parquet", parts / f"recommendations-{name}.parquet"]
    io.write_parquet(lists.favorites, written[0])
    io.write_parquet(lists.recommendations, written[1])
    return written


def merge_user_parts(parts: Path) -> UserLists:
    """Every chunk's files in `parts` as the two user frames, in user order."""
    return UserLists(
        _concat(parts, "favorites-*.parquet", ["userId"]),
        _concat(parts, "recommendations-*.parquet", ["userId", "rank"]),
    )


def _concat(parts: Path, pattern: str, order: list[str]) -> pd.DataFrame:
    import pandas as pd

    paths = sorted(parts.glob(pattern))
    if not paths:
        raise FileNotFoundError(f"no {pattern} chunk files in {parts}")
    frame = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
    return frame.sort_values(order, kind="stable", ignore_index=True)


@dataclass(frozen=True)
class ModelsFolder:
    """`models/`: version folders, named by id (UTC time first, so name order is age order)."""

    LATEST = "LATEST"  # the newest version published; the version store keeps its own
    path: Path

    @property
    def latest_marker(self) -> Path:
        return self.path / self.LATEST

    def version(self, version: str) -> VersionFolder:
        return VersionFolder(self.path / check_version(version))

    def staging(self, version: str) -> Path:
        """Where a version is written before one rename makes it appear whole."""
        return self.path / f".{check_version(version)}.tmp"

    def promote(self, version: str) -> VersionFolder:
        """One rename makes a staged version appear whole."""
        final = self.version(version)
        self.staging(version).rename(final.path)
        return final

    def latest_id(self) -> str | None:
        marker = self.latest_marker
        return marker.read_text().strip() if marker.is_file() else None

    def latest(self) -> VersionFolder | None:
        """The newest complete version named by LATEST, if there is one."""
        version = self.latest_id()
        if version is None:
            return None
        folder = self.version(version)
        return None if folder.missing() else folder

    def write_latest(self, version: str) -> None:
        from pipeline import io

        io.write_text(check_version(version) + "\n", self.latest_marker)


@dataclass(frozen=True)
class OutputFolder:
    """The top level of a run: the spec's CSV artifacts, plots and the newest model's copies.

    Frames named by a stem are written twice: `.csv` for people, `.parquet` for fast reloads.
    """

    path: Path

    @property
    def models(self) -> ModelsFolder:
        return ModelsFolder(self.path / "models")

    @property
    def plots(self) -> Path:
        return self.path / "plots"

    @property
    def data(self) -> Path:
        """MovieLens samples downloaded on a first run without data."""
        return self.path / "data"

    @property
    def api_token(self) -> Path:
        """The API token `movierec up` made when MOVIEREC_API_TOKEN was unset (mode 0600)."""
        return self.path / "api_token"

    @property
    def postgres(self) -> Path:
        """The embedded PostgreSQL server's cluster, password and log."""
        return self.path / "postgres"

    @property
    def redis(self) -> Path:
        """The embedded Redis server's data (append-only file)."""
        return self.path / "redis"

    @property
    def cleaning_report(self) -> Path:
        return self.path / "cleaning_report.json"

    @property
    def evaluation(self) -> Path:
        return self.path / "evaluation.json"

    @property
    def evaluation_plot(self) -> Path:
        return self.plots / "evaluation.png"

    @property
    def cold_start_evaluation(self) -> Path:
        """`movierec evaluate --protocol cold-start`: beside the temporal report, not over it."""
        return self.path / "evaluation_cold_start.json"

    @property
    def cold_start_evaluation_plot(self) -> Path:
        return self.plots / "evaluation_cold_start.png"

    @property
    def cleaned_movies(self) -> Path:
        return self.path / "cleaned_movies"

    @property
    def cleaned_tags(self) -> Path:
        return self.path / "cleaned_tags"

    @property
    def cleaned_ratings(self) -> Path:
        return self.path / "cleaned_ratings"

    @property
    def standardized_ratings(self) -> Path:
        return self.path / "standardized_ratings"

    @property
    def processed_tags(self) -> Path:
        return self.path / "processed_tags.csv"

    @property
    def clusters_movies(self) -> Path:
        return self.path / "clusters_movies.csv"

    @property
    def model(self) -> Path:
        return self.path / VersionFolder.MODEL_FILES[JOBLIB]

    @property
    def summary(self) -> Path:
        return self.path / "cluster_summary.json"

    @property
    def favorites(self) -> Path:
        return self.path / "user_favorites.csv"

    @property
    def recommendations(self) -> Path:
        return self.path / "user_recommendations.parquet"

    def plot(self, name: str) -> Path:
        return self.plots / f"{name}.png"
