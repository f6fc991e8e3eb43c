"""The offline pipeline end to end: stages, timings, artifacts and the versioned model folder."""

from __future__ import annotations

import hashlib
import platform
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version as package_version
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from pipeline import io
from pipeline.artifacts import RATINGS_DICTIONARY, OutputFolder, UserLists, VersionFolder
from pipeline.clusters.alignment import (
    Previous,
    align,
    read_previous,
    relabel_model,
    warm_start,
)
from pipeline.clusters.clustering import choose_k, cluster_metrics
from pipeline.clusters.names import ClusterName, name_clusters
from pipeline.clusters.summary import cluster_map, cluster_summary, genre_share, pca_2d
from pipeline.data.cleaning import CleanData, clean
from pipeline.data.indexing import count_distinct
from pipeline.data.readers import read_dataset
from pipeline.features.factors import movie_factors, preference_matrix
from pipeline.features.featurizer import movie_stats, tag_documents
from pipeline.features.scaling import standardize_per_user
from pipeline.lists.onboarding import onboarding_list
from pipeline.lists.ranking import bayesian_score, popular_list, similar_movies
from pipeline.lists.users import Catalog, recommend_users
from pipeline.model.estimator import build_model
from pipeline.model.export import save_models
from pipeline.params import PERSONAL, PipelineParams
from pipeline.plots.side_process import SCATTER_SAMPLE, ClusterPlots, plots_of, start_plot_process
from pipeline.process.blas import native_threads
from pipeline.process.memory import release_freed_memory

Progress = Callable[[str, float], None]
STAGES = (
    "read",
    "clean",
    "standardize",
    "features",
    "factors",
    "cluster",
    "plots",
    "analyse",
    "lists",
    "users",
    "write",
)
# Below this many ratings a stage's parallel loops are short: OpenMP threads that wait for a
# core cost more than they save (build() on 2 shared cores, one thread against the default:
# 0.51 s against 2.40 s at 100k ratings, 1.51 s against 4.70 s at 1M, medians).
SINGLE_THREAD_BELOW = 1_000_000
LIBRARIES = ("numpy", "pandas", "scikit-learn", "pyarrow", "joblib", "skl2onnx", "onnx")


@dataclass
class TrainResult:
    folder: VersionFolder
    timings: dict[str, float] = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)

    @property
    def version(self) -> str:
        return self.folder.version


class Stages:
    """Times each stage and reports how far the run is."""

    def __init__(self, progress: Progress | None, stages: tuple[str, ...]) -> None:
        self.progress = progress
        self.stages = stages
        self.timings: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        """What earlier stages freed is returned first: this stage's peak does not count it."""
        release_freed_memory()
        if self.progress:
            self.progress(name, self.stages.index(name) / len(self.stages))
        start = time.perf_counter()
        yield
        self.timings[name] = round(time.perf_counter() - start, 3)


@dataclass
class Loaded:
    """Clean data, and what metadata.json records about where it came from."""

    data: CleanData
    source: dict  # {"data_dir": ...} for a folder, {"database": ...} for a snapshot
    fingerprint: str
    cleaned_here: bool = True  # False: cleaned at import, whose report cleaning_report.json keeps


# Reads the training data, timing its own stages ("read", and "clean" where it cleans).
Loader = Callable[[Stages], Loaded]


def folder_loader(data_dir: str | Path) -> Loader:
    def load(stages: Stages) -> Loaded:
        with stages("read"):
            raw = read_dataset(data_dir)
        inputs = [t.path for t in (raw.ratings, raw.movies, raw.tags) if t is not None]
        # hashing releases the GIL: the files are hashed on a thread while they are cleaned
        with stages("clean"), ThreadPoolExecutor(max_workers=1) as hasher:
            fingerprint = hasher.submit(data_fingerprint, inputs)
            data = clean(raw)
        return Loaded(data, {"data_dir": str(Path(data_dir).resolve())}, fingerprint.result())

    return load


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


@dataclass
class FittedClusters:
    """The fitted model, the feature matrix it clustered and each movie's label."""

    model: Pipeline
    X: np.ndarray
    labels: np.ndarray
    k: int
    silhouette_by_k: dict[int, float]  # every k tried, when k was chosen
    kept_names: dict[int, ClusterName]  # cluster -> the name it keeps from the previous version


def _fit_clusters(
    movies: pd.DataFrame, params: PipelineParams, previous: Previous | None
) -> FittedClusters:
    """The featurizer is fitted through a slice of the model, which shares its steps, so the
    features are computed once. With a `previous` version, the clusters take the ids of those
    they match in it (pipeline.clusters.alignment)."""
    model = build_model(params)
    X = model[:-1].fit_transform(movies)
    k, scores = params.k, {}
    if params.choose_k:
        chosen = choose_k(X, params.choose_k, params)
        k, scores = chosen.k, chosen.silhouettes
        model.set_params(cluster__n_clusters=k)
    start = None if previous is None else warm_start(X, movies["movieId"].to_numpy(), k, previous)
    if start is not None:
        model.set_params(cluster__init=start, cluster__n_init=1)
    labels = model[-1].fit(X).predict(X)
    kept: dict[int, ClusterName] = {}
    if previous is not None:
        alignment = align(labels, movies["movieId"].to_numpy(), k, previous)
        relabel_model(model, alignment.relabel)
        labels, kept = alignment.relabel[labels], alignment.kept
    return FittedClusters(model, X, labels, k, scores, kept)


def _quality(fitted: FittedClusters, params: PipelineParams) -> dict:
    metrics = cluster_metrics(
        fitted.X, fitted.labels, fitted.model[-1].inertia_, random_state=params.random_state
    )
    if fitted.silhouette_by_k:
        metrics["silhouette_by_k"] = {str(k): score for k, score in fitted.silhouette_by_k.items()}
    return metrics


def _library_versions() -> dict[str, str]:
    return {"python": platform.python_version()} | {n: package_version(n) for n in LIBRARIES}


@dataclass
class Built:
    """Everything the pipeline derives from clean data, before anything is written."""

    model: Pipeline
    X: np.ndarray
    movies: pd.DataFrame
    k: int
    metrics: dict
    summary: list[dict]
    popular: pd.DataFrame
    similar: pd.DataFrame
    global_mean: float
    users: UserLists | None
    cluster_map: list[list]  # sampled [movieId, x, y, cluster] for the dashboard
    onboarding: pd.DataFrame  # rank, movieId, cluster: what a new user is asked to rate


@dataclass
class ClusteredMovies:
    """The movies as soon as they are clustered, for work that need not wait for the lists."""

    X: np.ndarray
    movies: pd.DataFrame  # with its "cluster" column
    k: int
    genre_share: pd.DataFrame  # clusters x genres (`clusters.summary.genre_share`)
    names: list[str]  # cluster i's name at i (pipeline.clusters.names)


def build(
    data: CleanData,
    params: PipelineParams,
    stages: Stages | None = None,
    with_users: bool = True,
    on_clustered: Callable[[ClusteredMovies], None] | None = None,
    previous: Previous | None = None,
) -> Built:
    """The pipeline's computation, without I/O, so evaluation runs exactly what is served.

    The standardized ratings (`standardized_ratings`) are an artifact only: nothing here uses them.
    `on_clustered` is called once the clusters exist, before the lists are built.
    """
    threads = 1 if len(data.ratings) < SINGLE_THREAD_BELOW else None
    with native_threads(threads):
        return _build(
            data, params, stages or Stages(None, STAGES), with_users, on_clustered, previous
        )


def _build(
    data: CleanData,
    params: PipelineParams,
    stages: Stages,
    with_users: bool,
    on_clustered: Callable[[ClusteredMovies], None] | None,
    previous: Previous | None,
) -> Built:
    with stages("features"):
        movies = _movie_frame(data, params)
    preferences = None  # fitted on by the factors, reused by the per-user stage
    if params.recommender == PERSONAL:
        with stages("factors"):
            preferences = preference_matrix(data.ratings, movies["movieId"].to_numpy())
            movies = movie_factors(movies, preferences, params.factors, params.random_state)
    with stages("cluster"):
        fitted = _fit_clusters(movies, params, previous)
        global_mean = float(data.ratings["rating"].mean())
        movies = movies.assign(
            cluster=fitted.labels.astype(np.int32),
            score=bayesian_score(
                movies["n_ratings"], movies["avg_rating"], global_mean, params.prior_count
            ),
        )
        names = name_clusters(movies, data.tags, fitted.k, fitted.kept_names)
        share = genre_share(movies, fitted.k)
        clustered = ClusteredMovies(fitted.X, movies, fitted.k, share, [n.name for n in names])
    if on_clustered is not None:
        on_clustered(clustered)
    with stages("analyse"):
        metrics = _quality(fitted, params)
        summary = cluster_summary(movies, clustered.genre_share, names)
        points = cluster_map(fitted.X, movies, params.random_state)
    with stages("lists"):
        popular = popular_list(movies, params.stored_depth)
        onboarding = onboarding_list(movies, data.ratings, params.stored_depth)
        similar = similar_movies(fitted.X, movies, params.stored_depth)
    users = None
    if with_users:
        with stages("users"):
            catalog = Catalog.from_movies(
                movies, fitted.k, params.stored_depth, params.personal_options
            )
            if not np.array_equal(catalog.movie_ids, movies["movieId"].to_numpy()):
                preferences = None  # its columns are in another order than the catalogue's
            users = recommend_users(data.ratings, catalog, preferences)
    return Built(
        model=fitted.model,
        X=fitted.X,
        movies=movies,
        k=fitted.k,
        metrics=metrics,
        summary=summary,
        popular=popular,
        similar=similar,
        global_mean=global_mean,
        users=users,
        cluster_map=points,
        onboarding=onboarding,
    )


def _run(
    load: Loader,
    out_dir: str | Path,
    params: PipelineParams,
    progress: Progress | None,
    with_users: bool,
    previous: VersionFolder | None,
) -> TrainResult:
    """The plot process, when there are plots, starts first: its imports overlap the stages."""
    with start_plot_process() if params.plots else nullcontext() as plotter:
        return _run_stages(
            load, out_dir, params, progress, with_users, plotter, read_previous(previous)
        )


def _run_stages(
    load: Loader,
    out_dir: str | Path,
    params: PipelineParams,
    progress: Progress | None,
    with_users: bool,
    plotter: ProcessPoolExecutor | None,
    previous: Previous | None,
) -> TrainResult:
    """Large files are written on a background thread while the later stages compute, and the
    plots drawn in `plotter` meanwhile; the "plots" stage times this process's share of them."""
    out = OutputFolder(Path(out_dir))
    stages = Stages(progress, STAGES if with_users else tuple(s for s in STAGES if s != "users"))
    loaded = load(stages)
    data, fingerprint = loaded.data, loaded.fingerprint
    started = datetime.now(UTC)
    version = f"{started:%Y%m%dT%H%M%S%fZ}-{fingerprint[:8]}"
    staging = VersionFolder(out.models.staging(version))
    shutil.rmtree(staging.path, ignore_errors=True)
    staging.path.mkdir(parents=True)
    with ThreadPoolExecutor(max_workers=1) as writer:
        pending = [writer.submit(_write_cleaned, out, staging, data, loaded.cleaned_here)]
        with stages("standardize"):
            standardized = standardized_ratings(data.ratings, params.scaling)
        # written while the later stages compute, and freed once written
        pending.append(
            writer.submit(_write_frame, standardized, out.standardized_ratings, RATINGS_DICTIONARY)
        )
        del standardized
        drawing: list[Callable[[], dict[str, bytes]]] = []  # the plots, being drawn

        def send_to_plotter(clustered: ClusteredMovies) -> None:
            with stages("plots"):
                drawing.append(plots_of(plotter, _plot_data(clustered, params)))

        on_clustered = send_to_plotter if plotter else None
        built = build(data, params, stages, with_users, on_clustered, previous)
        # written once every stage has worked: a run that fails leaves the plots it replaces
        pending += [writer.submit(_write_plots, out, plotted) for plotted in drawing]
        metadata = {
            "version": version,
            "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
            **loaded.source,
            "data_fingerprint": fingerprint,
            "layout": data.report["layout"],
            "parameters": params.to_metadata(built.k),
            "metrics": built.metrics,
            "counts": {
                "movies": len(built.movies),
                "ratings": len(data.ratings),
                "users": count_distinct(data.ratings["userId"].to_numpy()),
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
            final = out.models.promote(version)
            if built.users is not None:  # a train() run's lists come later, with LATEST
                out.models.write_latest(version)
            _write_top_level(out, final, built)
    metadata["timings"] = stages.timings
    return TrainResult(final, stages.timings, metadata)


def _plot_data(clustered: ClusteredMovies, params: PipelineParams) -> ClusterPlots:
    labels = clustered.movies["cluster"].to_numpy()
    rows, xy = pca_2d(clustered.X, SCATTER_SAMPLE, params.random_state)
    share = clustered.genre_share
    return ClusterPlots(
        labels, clustered.k, labels[rows], xy, share.to_numpy(), list(share), clustered.names
    )


def _write_plots(out: OutputFolder, plotted: Callable[[], dict[str, bytes]]) -> None:
    for name, image in plotted().items():
        io.write_bytes(image, out.plot(name))


def standardized_ratings(ratings: pd.DataFrame, scaling: str) -> pd.DataFrame:
    """The spec's standardized ratings: each rating beside its value on its user's own scale."""
    return ratings.assign(rating_std=standardize_per_user(ratings, scaling)).drop(
        columns="timestamp"
    )


def _write_frame(frame: pd.DataFrame, stem: Path, dictionary: bool | list[str] = True) -> None:
    """A CSV for people and a Parquet copy for fast reloads. The writer thread runs beside the
    later stages, so what each write's Arrow copy freed goes back at once, not at the next stage:
    at 25M each copy is hundreds of megabytes."""
    io.write_csv(frame, stem.with_suffix(".csv"))
    release_freed_memory()
    io.write_parquet(frame, stem.with_suffix(".parquet"), dictionary=dictionary)
    release_freed_memory()


def _write_cleaned(
    out: OutputFolder, staging: VersionFolder, data: CleanData, cleaned_here: bool
) -> None:
    if cleaned_here:
        io.write_json(data.report, out.cleaning_report)
    _write_frame(data.movies, out.cleaned_movies)
    _write_frame(data.tags, out.cleaned_tags)
    processed = data.tags.groupby(["movieId", "filtered"], as_index=False).size()
    processed = processed.rename(columns={"filtered": "tag", "size": "count"})
    io.write_csv(processed, out.processed_tags)
    staging.write_ratings(data.ratings)
    release_freed_memory()  # as in _write_frame
    io.write_csv(data.ratings, out.cleaned_ratings.with_suffix(".csv"))
    release_freed_memory()
    io.link_or_copy(staging.ratings, out.cleaned_ratings.with_suffix(".parquet"))


def _write_built(staging: VersionFolder, built: Built, metadata: dict) -> None:
    metadata["model_files"] = save_models(staging, built.model)  # load_model checks them
    io.write_parquet(built.movies.drop(columns=["tags"], errors="ignore"), staging.movies)
    io.write_json(built.summary, staging.summary)
    io.write_json(built.cluster_map, staging.cluster_map)
    io.write_parquet(built.onboarding, staging.onboarding)
    io.write_parquet(built.popular, staging.popular)
    io.write_parquet(built.similar, staging.similar)
    if built.users is not None:
        staging.write_users(built.users)
    io.write_json(metadata, staging.metadata)


def _write_top_level(out: OutputFolder, version: VersionFolder, built: Built) -> None:
    clusters = built.movies[["movieId", "title", "genres", "cluster"]]
    io.write_csv(clusters, out.clusters_movies)
    io.link_or_copy(version.model, out.model)
    io.link_or_copy(version.summary, out.summary)
    if built.users is None:  # a train() run: the old lists belong to the previous clusters
        out.favorites.unlink(missing_ok=True)
        out.recommendations.unlink(missing_ok=True)
        return
    io.write_csv(built.users.favorites, out.favorites)
    io.link_or_copy(version.recommendations, out.recommendations)


def _loader(source: str | Path | Loader) -> Loader:
    return source if callable(source) else folder_loader(source)


def train(
    source: str | Path | Loader,
    out_dir: str | Path,
    params: PipelineParams | None = None,
    progress: Progress | None = None,
    previous: VersionFolder | None = None,
) -> TrainResult:
    """Everything but the per-user lists, which the serving side computes in chunks.

    `source`: a MovieLens folder, or a Loader (a database snapshot). `previous`: the version
    whose cluster ids and names carry over (its movies and cluster summary)."""
    params = params or PipelineParams()
    return _run(_loader(source), out_dir, params, progress, with_users=False, previous=previous)


def run_pipeline(
    source: str | Path | Loader,
    out_dir: str | Path,
    params: PipelineParams | None = None,
    progress: Progress | None = None,
    previous: VersionFolder | None = None,
) -> TrainResult:
    """The whole pipeline, all users included."""
    params = params or PipelineParams()
    return _run(_loader(source), out_dir, params, progress, with_users=True, previous=previous)
