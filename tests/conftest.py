"""Fixtures shared by several test modules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
