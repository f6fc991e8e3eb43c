"""The offline pipeline end to end: stages, timings, artifacts and the versioned model folder."""

from __future__ import annotations

import hashlib
import platform
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version as package_version
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import io, plots
from pipeline.analysis import cluster_summary, genre_share
from pipeline.cleaning import CleanData, clean
from pipeline.clustering import choose_k, cluster_metrics
from pipeline.factors import movie_factors
from pipeline.features import movie_stats, tag_documents
from pipeline.model import build_model
from pipeline.personal import PersonalOptions
from pipeline.ranking import bayesian_score, popular_list, similar_movies
from pipeline.readers import read_dataset
from pipeline.scaling import standardize_per_user
from pipeline.users import Catalog, recommend_users

Progress = Callable[[str, float], None]
STAGES = (
    "read",
    "clean",
    "standardize",
    "features",
    "factors",
    "cluster",
    "analyse",
    "lists",
    "users",
    "plots",
    "write",
)
RATINGS_ROW_GROUP = 1 << 18
RECOMMENDERS = ("default", "spec")
LIBRARIES = ("numpy", "pandas", "scikit-learn", "pyarrow", "joblib")


@dataclass(frozen=True)
class PipelineParams:
    k: int = 10
    algorithm: str = "minibatch"
    batch_size: int = 1000
    random_state: int = 42
    scaling: str = "zscore"
    prior_count: float = 10.0
    list_depth: int = 50
    tag_features: int = 0
    choose_k: tuple[int, ...] = ()  # when given, k is the best of these by silhouette
    plots: bool = True
    recommender: str = "default"  # "spec": the favorite cluster ranked by the Bayesian score
    factors: int = 32  # size of the collaborative movie embedding (default recommender)
    factor_weight: float = 1.0  # the embedding's weight among the clustering features
    personal: PersonalOptions = field(default_factory=PersonalOptions)

    def __post_init__(self) -> None:
        if self.recommender not in RECOMMENDERS:
            raise ValueError(
                f"unknown recommender {self.recommender!r}; choose from {', '.join(RECOMMENDERS)}"
            )
        if self.recommender == "default" and self.factors < 1:
            raise ValueError("the default recommender needs at least 1 factor")


@dataclass
class TrainResult:
    version: str
    version_dir: Path
    timings: dict[str, float] = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)


class _Stages:
    """Times each stage and reports how far the run is."""

    def __init__(self, progress: Progress | None, stages: tuple[str, ...]) -> None:
        self.progress = progress
        self.stages = stages
        self.timings: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        if self.progress:
            self.progress(name, self.stages.index(name) / len(self.stages))
        start = time.perf_counter()
        yield
        self.timings[name] = round(time.perf_counter() - start, 3)


def data_fingerprint(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.name.encode())
        with path.open("rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()


def _movie_frame(data: CleanData, params: PipelineParams) -> pd.DataFrame:
    movies = movie_stats(data.movies, data.ratings)
    if params.tag_features:
        movies["tags"] = tag_documents(movies, data.tags)
    return movies


def _fit_clusters(movies: pd.DataFrame, params: PipelineParams) -> tuple:
    model = build_model(
        params.k,
        params.algorithm,
        params.batch_size,
        params.random_state,
        params.scaling,
        params.tag_features,
        params.factor_weight,
    )
    k, scores = params.k, {}
    if params.choose_k:
        X = model[:-1].fit_transform(movies)
        k, scores = choose_k(
            X, params.choose_k, params.algorithm, params.batch_size, params.random_state
        )
        model.set_params(cluster__n_clusters=k)
    model.fit(movies)
    X = model[:-1].transform(movies)
    labels = model[-1].predict(X)
    metrics = cluster_metrics(X, labels, model[-1].inertia_, random_state=params.random_state)
    if scores:
        metrics["silhouette_by_k"] = {str(key): value for key, value in scores.items()}
    return model, X, labels, k, metrics


def _library_versions() -> dict[str, str]:
    return {"python": platform.python_version()} | {n: package_version(n) for n in LIBRARIES}


@dataclass
class Built:
    """Everything the pipeline derives from clean data, before anything is written."""

    model: object
    X: np.ndarray
    movies: pd.DataFrame
    k: int
    metrics: dict
    summary: list[dict]
    popular: pd.DataFrame
    similar: pd.DataFrame
    standardized: pd.DataFrame
    global_mean: float
    users: tuple[pd.DataFrame, pd.DataFrame] | None


def build(
    data: CleanData,
    params: PipelineParams,
    stages: _Stages | None = None,
    with_users: bool = True,
) -> Built:
    """The pipeline's computation, without I/O, so evaluation runs exactly what is served."""
    stages = stages or _Stages(None, STAGES)
    with stages("standardize"):
        standardized = data.ratings.assign(
            rating_std=standardize_per_user(data.ratings, params.scaling)
        ).drop(columns="timestamp")
    with stages("features"):
        movies = _movie_frame(data, params)
    if params.recommender == "default":
        with stages("factors"):
            movies = movie_factors(movies, data.ratings, params.factors, params.random_state)
    with stages("cluster"):
        model, X, labels, k, metrics = _fit_clusters(movies, params)
        global_mean = float(data.ratings["rating"].mean())
        movies = movies.assign(
            cluster=labels.astype(np.int32),
            score=bayesian_score(
                movies["n_ratings"], movies["avg_rating"], global_mean, params.prior_count
            ),
        )
    with stages("analyse"):
        summary = cluster_summary(movies, k)
    with stages("lists"):
        popular = popular_list(movies, params.list_depth)
        similar = similar_movies(X, movies, params.list_depth)
    users = None
    if with_users:
        with stages("users"):
            personal = params.personal if params.recommender == "default" else None
            catalog = Catalog.from_movies(movies, k, params.list_depth, personal)
            users = recommend_users(data.ratings, catalog)
    return Built(
        model, X, movies, k, metrics, summary, popular, similar, standardized, global_mean, users
    )


def _run(
    data_dir: str | Path,
    out_dir: str | Path,
    params: PipelineParams,
    progress: Progress | None,
    with_users: bool,
) -> TrainResult:
    """Large files are written on a background thread while the later stages compute."""
    out = Path(out_dir)
    stages = _Stages(progress, STAGES if with_users else tuple(s for s in STAGES if s != "users"))
    with stages("read"):
        raw = read_dataset(data_dir)
        inputs = [t.path for t in (raw.ratings, raw.movies, raw.tags) if t is not None]
        fingerprint = data_fingerprint(inputs)
    with stages("clean"):
        data = clean(raw)
        del raw
    started = datetime.now(UTC)
    version = f"{started:%Y%m%dT%H%M%S%fZ}-{fingerprint[:8]}"
    staging = out / "models" / f".{version}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with ThreadPoolExecutor(max_workers=1) as writer:
        pending = [writer.submit(_write_cleaned, out, staging, data)]
        built = build(data, params, stages, with_users)
        pending.append(writer.submit(_write_frame, built.standardized, out, "standardized_ratings"))
        if params.plots:
            with stages("plots"):
                _plots(out / "plots", built, params)
        metadata = {
            "version": version,
            "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "data_dir": str(Path(data_dir).resolve()),
            "data_fingerprint": fingerprint,
            "layout": data.report["layout"],
            "parameters": asdict(params) | {"k": built.k, "choose_k": list(params.choose_k)},
            "metrics": built.metrics,
            "counts": {
                "movies": len(built.movies),
                "ratings": len(data.ratings),
                "users": int(data.ratings["userId"].nunique()),
                "tags": len(data.tags),
            },
            "ranking_score": "bayesian average rating, prior weight parameters.prior_count",
            "global_mean_rating": built.global_mean,
            "library_versions": _library_versions(),
        }
        with stages("write"):
            _write_built(staging, built, metadata)
            for job in pending:
                job.result()
            version_dir = _publish(staging, version, built.users is not None)
            _write_top_level(out, version_dir, built)
    metadata["timings"] = stages.timings
    return TrainResult(version, version_dir, stages.timings, metadata)


def _plots(folder: Path, built: Built, params: PipelineParams) -> None:
    labels = built.movies["cluster"].to_numpy()
    plots.cluster_sizes(labels, built.k, folder / "cluster_sizes.png")
    plots.pca_scatter(built.X, labels, folder / "cluster_pca.png", params.random_state)
    plots.genre_heatmap(genre_share(built.movies, built.k), folder / "genre_share.png")


def _write_frame(frame: pd.DataFrame, out: Path, name: str) -> None:
    """A CSV for people and a Parquet copy for fast reloads."""
    io.write_csv(frame, out / f"{name}.csv")
    io.write_parquet(frame, out / f"{name}.parquet")


def _write_cleaned(out: Path, staging: Path, data: CleanData) -> None:
    io.write_json(data.report, out / "cleaning_report.json")
    _write_frame(data.movies, out, "cleaned_movies")
    _write_frame(data.tags, out, "cleaned_tags")
    processed = data.tags.groupby(["movieId", "filtered"], as_index=False).size()
    processed = processed.rename(columns={"filtered": "tag", "size": "count"})
    io.write_csv(processed, out / "processed_tags.csv")
    io.write_parquet(data.ratings, staging / "ratings.parquet", row_group_size=RATINGS_ROW_GROUP)
    io.write_csv(data.ratings, out / "cleaned_ratings.csv")
    io.link_or_copy(staging / "ratings.parquet", out / "cleaned_ratings.parquet")


def _write_built(staging: Path, built: Built, metadata: dict) -> None:
    io.dump_joblib(built.model, staging / "kmeans_model.pkl")
    io.write_parquet(
        built.movies.drop(columns=["tags"], errors="ignore"), staging / "movies.parquet"
    )
    io.write_json(built.summary, staging / "cluster_summary.json")
    io.write_parquet(built.popular, staging / "popular.parquet")
    io.write_parquet(built.similar, staging / "movie_similar.parquet")
    if built.users is not None:
        io.write_parquet(built.users[0], staging / "user_favorites.parquet")
        io.write_parquet(built.users[1], staging / "user_recommendations.parquet")
    io.write_json(metadata, staging / "metadata.json")


def _publish(staging: Path, version: str, complete: bool) -> Path:
    """One rename makes the folder appear whole; LATEST names it once it has the user lists.

    A `train()` folder gets its user lists from the serving side, which moves LATEST itself.
    """
    final = staging.parent / version
    staging.rename(final)
    if complete:
        io.write_text(version + "\n", staging.parent / "LATEST")
    return final


def _write_top_level(out: Path, version_dir: Path, built: Built) -> None:
    clusters = built.movies[["movieId", "title", "genres", "cluster"]]
    io.write_csv(clusters, out / "clusters_movies.csv")
    io.link_or_copy(version_dir / "kmeans_model.pkl", out / "kmeans_model.pkl")
    io.link_or_copy(version_dir / "cluster_summary.json", out / "cluster_summary.json")
    if built.users is None:  # a train() run: the old lists belong to the previous clusters
        (out / "user_favorites.csv").unlink(missing_ok=True)
        (out / "user_recommendations.parquet").unlink(missing_ok=True)
        return
    io.write_csv(built.users[0], out / "user_favorites.csv")
    io.link_or_copy(
        version_dir / "user_recommendations.parquet", out / "user_recommendations.parquet"
    )


def train(
    data_dir: str | Path,
    out_dir: str | Path,
    params: PipelineParams | None = None,
    progress: Progress | None = None,
) -> TrainResult:
    """Everything but the per-user lists, which the serving side computes in chunks."""
    return _run(data_dir, out_dir, params or PipelineParams(), progress, with_users=False)


def run_pipeline(
    data_dir: str | Path,
    out_dir: str | Path,
    params: PipelineParams | None = None,
    progress: Progress | None = None,
) -> TrainResult:
    """The whole pipeline, all users included."""
    return _run(data_dir, out_dir, params or PipelineParams(), progress, with_users=True)
