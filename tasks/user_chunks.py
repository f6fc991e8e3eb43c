"""Split users into contiguous id ranges for parallel chunk tasks, and reassemble their output.

Each chunk also writes its rows to a part file, so the version folder ends up with the same
user_favorites/user_recommendations files an offline run writes and can be re-published later.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from pipeline.io import write_parquet

PARTS_DIR = "user_parts"
FAVORITES = "user_favorites.parquet"
RECOMMENDATIONS = "user_recommendations.parquet"


def user_ranges(user_ids: Sequence[int] | np.ndarray, chunk_users: int) -> list[tuple[int, int]]:
    """Inclusive (first, last) user ids of consecutive slices of at most `chunk_users` users."""
    if chunk_users <= 0:
        raise ValueError("chunk_users must be positive")
    ids = np.unique(np.asarray(user_ids, dtype="int64"))
    return [
        (int(ids[start]), int(ids[min(start + chunk_users, len(ids)) - 1]))
        for start in range(0, len(ids), chunk_users)
    ]


def write_part(
    version_dir: Path, user_lo: int, user_hi: int, favorites: pd.DataFrame, recs: pd.DataFrame
) -> None:
    """Atomic per-chunk files, so a retried chunk simply overwrites its own earlier attempt."""
    parts = version_dir / PARTS_DIR
    parts.mkdir(exist_ok=True)
    name = f"{user_lo:010d}-{user_hi:010d}"
    write_parquet(favorites, parts / f"favorites-{name}.parquet")
    write_parquet(recs, parts / f"recommendations-{name}.parquet")


def merge_parts(version_dir: Path) -> int:
    """Concatenate the chunk files into the two documented user files; returns the user count.

    A redelivered publish finds the parts already merged and removed, and keeps the merged files.
    """
    parts = version_dir / PARTS_DIR
    merged = version_dir / FAVORITES
    if not parts.exists() and merged.is_file() and (version_dir / RECOMMENDATIONS).is_file():
        return pq.ParquetFile(merged).metadata.num_rows
    favorites = _concat(parts, "favorites-*.parquet", ["userId"])
    recs = _concat(parts, "recommendations-*.parquet", ["userId", "rank"])
    write_parquet(favorites, version_dir / FAVORITES)
    write_parquet(recs, version_dir / RECOMMENDATIONS)
    shutil.rmtree(parts)
    return len(favorites)


def _concat(parts: Path, pattern: str, order: list[str]) -> pd.DataFrame:
    paths = sorted(parts.glob(pattern))
    if not paths:
        raise FileNotFoundError(f"no {pattern} chunk files in {parts}")
    frame = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
    return frame.sort_values(order, kind="stable", ignore_index=True)
