"""Atomic artifact writers: a reader never sees a half-written file, even if a run dies mid-way."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipeline.atomic import atomic_path  # re-exported: every writer here uses it

CSV_OPTIONS = pacsv.WriteOptions(quoting_style="needed")


def _table(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, preserve_index=False)


def write_csv(frame: pd.DataFrame, path: str | Path) -> None:
    """pyarrow's writer: several times faster than DataFrame.to_csv on millions of rows."""
    with atomic_path(path) as tmp:
        pacsv.write_csv(_table(frame), tmp, CSV_OPTIONS)


def write_parquet(
    frame: pd.DataFrame,
    path: str | Path,
    row_group_size: int | None = None,
    dictionary: bool | list[str] = True,
) -> None:
    """`dictionary`: the columns to dictionary-encode (True: pyarrow tries every column)."""
    with atomic_path(path) as tmp:
        pq.write_table(_table(frame), tmp, row_group_size=row_group_size, use_dictionary=dictionary)


def write_json(obj: Any, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def write_text(text: str, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes(data: bytes, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def dump_joblib(obj: Any, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        joblib.dump(obj, tmp, compress=3)


def link_or_copy(source: str | Path, path: str | Path) -> None:
    """A second name for a large artifact costs nothing when the file system allows hard links."""
    with atomic_path(path) as tmp:
        tmp.unlink()
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
