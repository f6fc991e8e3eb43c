"""Fixtures shared by several test modules."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.s3_server import S3Server, running_s3_server

# tests/ is <workspace>/main/tests, so parents[2] is the workspace holding shared/data.
SHARED_DATA = Path(
    os.environ.get("MOVIEREC_SHARED") or Path(__file__).resolve().parents[2] / "shared" / "data"
)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only folder with ml-latest-small/ and ml-latest-small.zip; never write into it."""
    if not (SHARED_DATA / "ml-latest-small.zip").is_file():
        pytest.skip(f"MovieLens sample data not found in {SHARED_DATA} (set MOVIEREC_SHARED)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def small_data() -> Path:
    """ml-latest-small: MOVIEREC_DATA when set, else the shared copy beside the repository."""
    path = Path(os.environ.get("MOVIEREC_DATA") or SHARED_DATA / "ml-latest-small")
    assert (path / "ratings.csv").is_file(), f"ml-latest-small not found at {path}"
    return path


@pytest.fixture(scope="session")
def small_run(small_data: Path, tmp_path_factory: pytest.TempPathFactory):
    """One pipeline run on ml-latest-small, shared by the tests that only read its artifacts."""
    from pipeline.run import run_pipeline

    out = tmp_path_factory.mktemp("output")
    return run_pipeline(small_data, out)


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


@pytest.fixture
def served_archive(mirror: Mirror, shared_data: Path) -> Path:
    """The real ml-latest-small archive on the local mirror."""
    name = "ml-latest-small.zip"
    return Path(shutil.copy(shared_data / name, mirror.folder / name))


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One moto S3 server for the session; each test takes a bucket of its own."""
    with running_s3_server(tmp_path_factory.mktemp("moto") / "moto.log") as server:
        yield server
