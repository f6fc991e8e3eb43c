"""The I/O floor of the pipeline: the reads and writes the spec's artifacts force, and nothing else.

    python benchmarks/io_floor.py DATA_DIR OUT_DIR

pyarrow reads `ratings.csv` with the compact types the pipeline's reader tries first, then
writes the cleaned ratings CSV and the standardized ratings CSV with the pipeline's columns,
dtypes and CSV options, one after the other. The standardized column is a global z-score (one
pass of pyarrow compute), so its floats print with as many digits as the per-user ones. Prints
one JSON line: the seconds of each step and their sum (`floor`), imports excluded.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from pipeline.data.readers import COMPACT, RATING_COLUMNS, RATING_DTYPES
from pipeline.io import CSV_OPTIONS


def floor(data: Path, out: Path) -> dict[str, float]:
    """Seconds per step; the output files are the pipeline's two large CSV artifacts."""
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    start = step = time.perf_counter()

    def done(name: str) -> None:
        nonlocal step
        now = time.perf_counter()
        timings[name] = round(now - step, 3)
        step = now

    types = {c: COMPACT[c] for c in RATING_COLUMNS}
    table = pacsv.read_csv(
        data / "ratings.csv", convert_options=pacsv.ConvertOptions(column_types=types)
    )
    done("read")
    cleaned = table.cast(pa.schema([(c, pa.from_numpy_dtype(t)) for c, t in RATING_DTYPES.items()]))
    del table
    pacsv.write_csv(cleaned, out / "cleaned_ratings.csv", CSV_OPTIONS)
    done("write_cleaned")
    rating = cleaned["rating"]
    z = pc.divide(pc.subtract(rating, pc.mean(rating)), pc.stddev(rating))
    standardized = cleaned.drop_columns(["timestamp"]).append_column(
        "rating_std", z.cast(pa.float32())
    )
    pacsv.write_csv(standardized, out / "standardized_ratings.csv", CSV_OPTIONS)
    done("write_standardized")
    timings["floor"] = round(time.perf_counter() - start, 3)
    return timings


if __name__ == "__main__":
    print(json.dumps({"timings": floor(Path(sys.argv[1]), Path(sys.argv[2]))}))
