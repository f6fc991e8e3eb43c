"""Where data and artifacts live, from flags or the environment."""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.errors import DataError

REPO = Path(__file__).resolve().parents[1]
BUNDLED_SAMPLE = REPO.parent / "shared" / "data" / "ml-latest-small"


def data_dir(flag: str | None = None) -> Path:
    """--data, else MOVIEREC_DATA, else the ml-latest-small sample beside the repository."""
    chosen = flag or os.environ.get("MOVIEREC_DATA")
    if chosen:
        return Path(chosen)
    if BUNDLED_SAMPLE.is_dir():
        return BUNDLED_SAMPLE
    raise DataError(
        "MOVIEREC_DATA",
        "no data folder given: pass --data DIR or set MOVIEREC_DATA "
        "(`movierec download --dataset ml-latest-small --to data` fetches one)",
    )


def output_dir(flag: str | None = None) -> Path:
    """--out, else MOVIEREC_OUTPUT, else output/ in the repository."""
    return Path(flag or os.environ.get("MOVIEREC_OUTPUT") or REPO / "output")
