"""Grouping `pipeline/` by stage moved code and changed nothing it computes: `movierec pipeline`
at the commit before the move and at the commit that made it, in one environment on the same
synthetic data, decodes to the same clusters, favorites and lists."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from io import BytesIO
from pathlib import Path

import pandas as pd
import pytest

from pipeline.artifacts import ModelsFolder, VersionFolder
from tests.test_architecture import ROOT

BEFORE_THE_MOVE = "7e92a72"  # the last commit with a flat pipeline/
THE_MOVE = "05252ba"  # the commit that grouped it by stage


def _checkout(commit: str, into: Path) -> Path:
    """The tree of `commit`, unpacked from git; skips where the history is not at hand."""
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    archive = subprocess.run(
        [git, "archive", "--format=tar", commit], cwd=ROOT, capture_output=True, check=False
    )
    if archive.returncode != 0:
        pytest.skip(f"commit {commit} is not in this clone's history")
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into


def _run_pipeline(tree: Path, data: Path, out: Path) -> VersionFolder:
    """`movierec pipeline` with `tree`'s code, whatever the installed package points at."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOVIEREC_")}
    env["PYTHONPATH"] = str(tree)
    subprocess.run(
        [sys.executable, "-m", "service.cli", "pipeline", "--data", str(data), "--out", str(out)],
        cwd=tree,
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    latest = ModelsFolder(out / "models").latest()
    assert latest is not None, f"no version in {out}"
    return latest


def _decoded(folder: VersionFolder) -> dict[str, object]:
    users = folder.read_users()
    return {
        "clusters": pd.read_parquet(folder.movies)[["movieId", "cluster"]],
        "summary": json.loads(folder.summary.read_text()),
        "favorites": users.favorites,
        "recommendations": users.recommendations,
        "similar": pd.read_parquet(folder.similar),
        "popular": pd.read_parquet(folder.popular),
    }


def test_the_pipeline_computes_the_same_before_and_after_the_move(small_data, tmp_path):
    before_tree = _checkout(BEFORE_THE_MOVE, tmp_path / "before")
    after_tree = _checkout(THE_MOVE, tmp_path / "after")
    assert (before_tree / "pipeline" / "evaluate.py").exists()  # the flat layout, really
    assert (after_tree / "pipeline" / "data" / "readers.py").exists()
    before = _decoded(_run_pipeline(before_tree, small_data, tmp_path / "out-before"))
    after = _decoded(_run_pipeline(after_tree, small_data, tmp_path / "out-after"))
    assert before.keys() == after.keys()
    for name, frame in before.items():
        if isinstance(frame, pd.DataFrame):
            pd.testing.assert_frame_equal(frame, after[name], obj=name)
        else:
            assert frame == after[name], name
