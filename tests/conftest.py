"""Fixtures shared by several test modules."""

from __future__ import annotations

import hashlib
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from pipeline import settings
from pipeline.data import download
from tests.s3_server import S3Server, running_s3_server

# The synthetic folder most tests run on: big enough for ten clusters, fifty-movie lists and
# chunked retrains, small enough that the suite reads it in seconds (30k ratings: 194 users,
# ~6,500 movies). Every 25th title is accented, so UTF-8 titles reach every reader and writer.
SYNTHETIC_RATINGS, SYNTHETIC_SEED, ACCENTED_EVERY = 30_000, 42, 25
# How the tests that need the real sample say where to get it; a run that skips more than
# MAX_SAMPLE_SKIPS of them fails, so that the suite keeps running on a fresh clone.
MAX_SAMPLE_SKIPS = 15
GET_THE_SAMPLE = (
    f"needs the real {settings.SAMPLE} sample, not found by `movierec up`'s rule (MOVIEREC_DATA, "
    f"{settings.BUNDLED_SAMPLE}, output/data/{settings.SAMPLE}): run `movierec download "
    f"--dataset {settings.SAMPLE} --to DIR`, then set MOVIEREC_DATA=DIR/{settings.SAMPLE}"
)


_sample_skips: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Count the tests skipped for want of the sample (their reason is GET_THE_SAMPLE)."""
    reason = report.longrepr[2] if report.skipped and isinstance(report.longrepr, tuple) else ""
    if reason.endswith(GET_THE_SAMPLE):
        _sample_skips.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Fail a run that skipped more than MAX_SAMPLE_SKIPS tests for want of the sample."""
    if len(_sample_skips) > MAX_SAMPLE_SKIPS:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        reporter.ensure_newline()
        reporter.write_line(
            f"{len(_sample_skips)} tests skipped for want of the {settings.SAMPLE} sample, "
            f"more than {MAX_SAMPLE_SKIPS}: run them on the synthetic folder instead",
            red=True,
        )


@dataclass(frozen=True)
class Shape:
    """What a MovieLens folder holds, counted from its CSV files alone."""

    users: int
    movies: int
    ratings: int
    tags: int

    @classmethod
    def of(cls, folder: Path) -> Shape:
        ratings = pd.read_csv(folder / "ratings.csv", usecols=["userId"])
        return cls(
            users=ratings["userId"].nunique(),
            movies=len(pd.read_csv(folder / "movies.csv", usecols=["movieId"])),
            ratings=len(ratings),
            tags=len(pd.read_csv(folder / "tags.csv", usecols=["movieId"])),
        )


@pytest.fixture(scope="session")
def small_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small MovieLens-shaped folder, made once per run by pipeline.data.synth with a fixed seed.

    Tests that need MovieLens data but not the real sample's numbers run on it, so they run
    on a fresh clone with nothing beside it and no network.
    """
    from pipeline.data.synth import synthesize

    folder = tmp_path_factory.mktemp("synthetic")
    synthesize(SYNTHETIC_RATINGS, folder, SYNTHETIC_SEED, accented_every=ACCENTED_EVERY)
    return folder


@pytest.fixture(scope="session")
def small_shape(small_data: Path) -> Shape:
    """The synthetic folder's counts, for tests that check nothing is lost or added."""
    return Shape.of(small_data)


@pytest.fixture(scope="session")
def small_movies(small_data: Path) -> pd.DataFrame:
    """The synthetic movies.csv as pandas reads it, for tests that pick known movies."""
    return pd.read_csv(small_data / "movies.csv")


@pytest.fixture(scope="session")
def small_ratings(small_data: Path) -> pd.DataFrame:
    """The synthetic ratings.csv as pandas reads it, for tests that pick known ratings."""
    return pd.read_csv(small_data / "ratings.csv")


@dataclass(frozen=True)
class Known:
    """Movies of the synthetic folder that tests name (its ids are not the sample's 1, 2, 3)."""

    movie: int  # the catalogue's first movie: its title is accented
    title: str
    most_rated: tuple[int, ...]  # the twenty most rated movies, most rated first

    def first_ratings(self, *values: float) -> dict[int, float]:
        """The most rated movies given `values` in turn, as a new user would rate them."""
        return dict(zip(self.most_rated, values, strict=False))


@pytest.fixture(scope="session")
def known(small_movies: pd.DataFrame, small_ratings: pd.DataFrame) -> Known:
    """Movies to name in requests; ties in popularity go to the lower id, so the pick is fixed."""
    counts = small_ratings["movieId"].value_counts(sort=False)
    most_rated = counts.sort_index().sort_values(ascending=False, kind="stable").index[:20]
    first = small_movies.iloc[0]
    return Known(int(first["movieId"]), first["title"], tuple(int(m) for m in most_rated))


@pytest.fixture(scope="session")
def sample_data() -> Path:
    """The real ml-latest-small, found by `movierec up`'s rule; skips when it is not there.

    Only tests whose point is the real sample use it: its quality floors and its quirks.
    """
    found = settings.data_on_disk()
    if found is None or not (found / "ratings.csv").is_file():
        pytest.skip(GET_THE_SAMPLE)
    return found


def pipeline_run(data: Path, tmp_path_factory: pytest.TempPathFactory):
    """A whole pipeline run on `data` into a new output folder; returns its TrainResult."""
    from pipeline.run import run_pipeline

    return run_pipeline(data, tmp_path_factory.mktemp("output"))


@pytest.fixture(scope="session")
def small_run(small_data: Path, tmp_path_factory: pytest.TempPathFactory):
    """One pipeline run on the synthetic folder, shared by the tests that only read its
    artifacts."""
    return pipeline_run(small_data, tmp_path_factory)


@pytest.fixture
def small_cache(small_run):
    """A fakeredis cache holding the synthetic run's version, as a publish leaves it."""
    import fakeredis

    from cache.publish import publish_version_dir

    r = fakeredis.FakeRedis()
    publish_version_dir(r, small_run.folder)
    return r


@pytest.fixture(scope="session")
def sample_run(sample_data: Path, tmp_path_factory: pytest.TempPathFactory):
    """One pipeline run on the real sample; skips without it, as `sample_data` does."""
    return pipeline_run(sample_data, tmp_path_factory)


@pytest.fixture
def write_dataset(tmp_path: Path):
    """Write {file name: text or bytes} into a new folder under tmp_path; returns the folder.

    Text is written as UTF-8; pass bytes to control the encoding exactly.
    """

    def write(files: dict[str, str | bytes], name: str = "data") -> Path:
        folder = tmp_path / name
        folder.mkdir(parents=True)
        for file_name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            (folder / file_name).parent.mkdir(parents=True, exist_ok=True)
            (folder / file_name).write_bytes(data)
        return folder

    return write


@dataclass
class Mirror:
    """A folder served over HTTP on 127.0.0.1, with a log of the paths requested."""

    folder: Path
    url: str
    requests: list[str] = field(default_factory=list)


class _QuietHandler(SimpleHTTPRequestHandler):
    def __init__(self, *args, requests: list[str], **kwargs) -> None:
        self.requests = requests
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        self.requests.append(self.path)
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output clean."""


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[Mirror]:
    folder = tmp_path / "mirror"
    folder.mkdir()
    requests: list[str] = []
    handler = partial(_QuietHandler, directory=str(folder), requests=requests)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Mirror(folder, f"http://127.0.0.1:{server.server_address[1]}/", requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="session")
def small_archive(small_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic folder zipped like GroupLens's ml-latest-small.zip: a top folder entry,
    then the CSV files inside it."""
    archive = tmp_path_factory.mktemp("archive") / f"{settings.SAMPLE}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.mkdir(settings.SAMPLE)
        for path in sorted(small_data.iterdir()):
            bundle.write(path, f"{settings.SAMPLE}/{path.name}")
    return archive


@pytest.fixture
def served_archive(mirror: Mirror, small_archive: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The synthetic archive on the local mirror, its md5 pinned as the sample's for the test."""
    served = mirror.folder / small_archive.name
    served.write_bytes(small_archive.read_bytes())
    monkeypatch.setitem(download.DATASETS, settings.SAMPLE, md5_of(served))
    return served


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One moto S3 server for the session; each test takes a bucket of its own."""
    with running_s3_server(tmp_path_factory.mktemp("moto") / "moto.log") as server:
        yield server
