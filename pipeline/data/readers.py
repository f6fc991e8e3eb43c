"""Readers for the three MovieLens layouts into one raw schema.

Clean files take a fast multi-threaded pyarrow path; only a file with a problem is re-read
slowly, row by row, so that every rejected row can be reported by its line number.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from pipeline.data.positions import nth_unexcluded
from pipeline.errors import DataError
from pipeline.process.memory import release_freed_memory

RATING_COLUMNS = ("userId", "movieId", "rating", "timestamp")
# The spec's compact dtypes of clean ratings: tens of millions of rows take 16 bytes each.
RATING_DTYPES = {
    "userId": np.uint32,
    "movieId": np.uint32,
    "rating": np.float32,
    "timestamp": np.int32,
}
MOVIE_COLUMNS = ("movieId", "title", "genres")
TAG_COLUMNS = ("userId", "movieId", "tag", "timestamp")
NUMERIC = {
    "userId": pa.int64(),
    "movieId": pa.int64(),
    "rating": pa.float64(),
    "timestamp": pa.int64(),
}
# Tried first, as they take less memory: the spec's compact types (ratings stay float64 for the
# half-star check). A value they cannot hold falls back to NUMERIC, where cleaning names it.
COMPACT = NUMERIC | {
    name: pa.from_numpy_dtype(dtype) for name, dtype in RATING_DTYPES.items() if name != "rating"
}

ML100K_GENRES = (
    "", "Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War",
    "Western",
)  # fmt: skip
ML100K_ITEM_COLUMNS = (
    "movieId",
    "title",
    "released",
    "video_released",
    "imdb_url",
    *tuple(f"g{i}" for i in range(len(ML100K_GENRES))),
)
SNIFF_BYTES = 4096
NOT_TEXT = (
    (b"\x1f\x8b", "a gzip archive, not text; unpack it first"),
    (b"PK\x03\x04", "a zip archive, not text; unpack it first"),
    (b"\xff\xfe", "UTF-16 text; save it as {encoding}"),
    (b"\xfe\xff", "UTF-16 text; save it as {encoding}"),
)
SHOWN_CHARS = 80


@dataclass(frozen=True)
class FileSpec:
    """How one MovieLens file is laid out on disk."""

    columns: tuple[str, ...]
    delimiter: str = ","
    header: bool = True
    encoding: str = "utf-8"
    keep: tuple[str, ...] | None = None  # columns to return; default all of `columns`

    @property
    def kept(self) -> tuple[str, ...]:
        return self.keep or self.columns


@dataclass
class RawTable:
    """One file's rows, with enough bookkeeping to name the line of any row later."""

    path: Path
    frame: pd.DataFrame
    rows_in: int
    first_line: int
    lines: np.ndarray | None = None  # line of each row when rows were rejected while reading
    rejected: dict[str, np.ndarray] = field(default_factory=dict)

    def line_numbers(self, rows: np.ndarray) -> np.ndarray:
        """File line numbers of the given row positions (or boolean mask)."""
        positions = np.flatnonzero(rows) if rows.dtype == bool else rows
        if self.lines is None:
            return positions + self.first_line
        return self.lines[positions]


@dataclass
class RawDataset:
    layout: str
    ratings: RawTable
    movies: RawTable
    tags: RawTable | None


def _shown(text: str) -> str:
    """A file's own text quoted in a message, cut short: binary junk must not flood a terminal."""
    return repr(text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "...")


def _delimiter_name(delimiter: str) -> str:
    return "tab" if delimiter == "\t" else f"'{delimiter}'"


def _check_text(path: Path, spec: FileSpec) -> None:
    """Name archives, UTF-16 and binary files up front; the CSV parser would only see junk."""
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    for magic, problem in NOT_TEXT:
        if head.startswith(magic):
            raise DataError(path, problem.format(encoding=spec.encoding))
    if b"\x00" in head:
        raise DataError(path, f"binary data (NUL bytes), not {spec.encoding} text")


def _check_header(path: Path, spec: FileSpec) -> None:
    with path.open("rb") as handle:
        first = handle.readline()
    try:
        text = first.decode(spec.encoding).strip("\r\n\ufeff")
    except UnicodeDecodeError as exc:
        raise DataError(path, f"not {spec.encoding} text (line 1, byte {exc.start})") from None
    header = next(csv.reader([text], delimiter=spec.delimiter), [])
    duplicated = [c for c in spec.kept if header.count(c) > 1]
    if duplicated:
        raise DataError(path, f"duplicated column(s) {', '.join(duplicated)} in header")
    missing = [c for c in spec.kept if c not in header]
    if not missing:
        return
    if len(header) == 1 and any(d in text for d in ";\t|"):
        raise DataError(
            path,
            f"wrong delimiter: header {_shown(text)} is one column; expected "
            f"{_delimiter_name(spec.delimiter)}-separated columns {','.join(spec.columns)}",
        )
    raise DataError(path, f"missing column(s) {', '.join(missing)}; header is {_shown(text)}")


def _source(path: Path, spec: FileSpec) -> Path | pa.BufferReader:
    """pyarrow takes one-character delimiters only; ml-1m's '::' becomes a tab first."""
    if len(spec.delimiter) == 1:
        return path
    return pa.BufferReader(path.read_bytes().replace(spec.delimiter.encode(), b"\t"))


def _options(spec: FileSpec, threads: bool, on_invalid, types: dict[str, pa.DataType]):
    read = pacsv.ReadOptions(
        use_threads=threads,
        encoding=spec.encoding,
        column_names=None if spec.header else list(spec.columns),
    )
    parse = pacsv.ParseOptions(
        delimiter=spec.delimiter if len(spec.delimiter) == 1 else "\t",
        invalid_row_handler=on_invalid,
        quote_char='"' if spec.delimiter == "," else False,
        # Blank lines stay as empty rows (dropped later as missing values): skipping them
        # would shift the line number of every later row in the report.
        ignore_empty_lines=False,
    )
    convert = pacsv.ConvertOptions(
        column_types=types,
        include_columns=list(spec.kept),
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    return read, parse, convert


def _utf8_error(path: Path, spec: FileSpec) -> DataError:
    data = path.read_bytes()
    try:
        data.decode(spec.encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return DataError(path, f"not {spec.encoding} text (first bad byte at line {line})")
    return DataError(path, f"not {spec.encoding} text")


@contextmanager
def _decode_errors_collected() -> Iterator[list[UnicodeDecodeError]]:
    """pyarrow decodes a bad row's text before calling the invalid-row handler; when that
    decoding fails, the error is 'unraisable' and would be printed as a traceback."""
    collected: list[UnicodeDecodeError] = []
    previous = sys.unraisablehook

    def hook(unraisable) -> None:
        if isinstance(unraisable.exc_value, UnicodeDecodeError):
            collected.append(unraisable.exc_value)
        else:
            previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield collected
    finally:
        sys.unraisablehook = previous


def _read(path: Path, spec: FileSpec, threads: bool, numeric: dict[str, pa.DataType] | None):
    """`numeric`: the types of numeric columns; None reads every column as text."""
    invalid: list[int | None] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        invalid.append(row.number)
        return "skip"

    types = {c: numeric[c] if numeric and c in numeric else pa.string() for c in spec.kept}
    try:
        with _decode_errors_collected() as undecodable:
            table = pacsv.read_csv(_source(path, spec), *_options(spec, threads, on_invalid, types))
    except pa.ArrowInvalid as exc:
        if undecodable or "utf8" in str(exc).lower():
            raise _utf8_error(path, spec) from None
        if numeric:
            return None, invalid
        raise DataError(path, f"cannot be parsed as MovieLens data ({exc})") from None
    return table, invalid


def read_table(path: Path, spec: FileSpec) -> RawTable:
    """Read one file; malformed rows and unparseable numbers are rejected with their lines."""
    if not path.is_file():
        raise DataError(path, "is a folder, not a file" if path.is_dir() else "file not found")
    if path.stat().st_size == 0:
        raise DataError(path, "empty file")
    _check_text(path, spec)
    if spec.header:
        _check_header(path, spec)
    first_line = 2 if spec.header else 1
    for numeric in (COMPACT, NUMERIC):
        table, invalid = _read(path, spec, threads=True, numeric=numeric)
        if table is not None:
            break
    if table is not None and not invalid:
        frame = table.to_pandas(split_blocks=True)  # a column each: no copy into one 2-D block
        del table
        release_freed_memory()
        return RawTable(path, frame, len(frame), first_line)
    return _read_slowly(path, spec, first_line)


def _read_slowly(path: Path, spec: FileSpec, first_line: int) -> RawTable:
    table, invalid = _read(path, spec, threads=False, numeric=None)
    frame = table.to_pandas()
    malformed = np.sort(np.asarray(invalid, dtype=np.int64))
    if len(frame) == 0 and len(malformed):
        raise DataError(
            path,
            f"no row has the {len(spec.columns)} {_delimiter_name(spec.delimiter)}-separated "
            f"fields of this layout (wrong delimiter?); first bad line {malformed[0]}",
        )
    lines = nth_unexcluded(malformed - first_line, np.arange(len(frame))) + first_line
    bad = np.zeros(len(frame), dtype=bool)
    for column in (c for c in spec.kept if c in NUMERIC):
        text = frame[column].str.strip()
        number = pd.to_numeric(text, errors="coerce")
        bad |= number.isna().to_numpy() & (text != "").to_numpy()
        frame[column] = number
    rejected = {"malformed_row": malformed, "unparseable": lines[bad]}
    frame = frame.loc[~bad].reset_index(drop=True)
    rows_in = len(lines) + len(malformed)
    return RawTable(path, frame, rows_in, first_line, lines[~bad], rejected)


def _ml100k_movies(path: Path) -> RawTable:
    raw = read_table(path, FileSpec(ML100K_ITEM_COLUMNS, "|", header=False, encoding="latin-1"))
    flags = raw.frame[[f"g{i}" for i in range(len(ML100K_GENRES))]].to_numpy() == "1"
    names = np.array(ML100K_GENRES, dtype=object)
    raw.frame = pd.DataFrame({
        "movieId": raw.frame["movieId"],
        "title": raw.frame["title"],
        "genres": ["|".join(n for n in names[row] if n) for row in flags],
    })  # fmt: skip
    return raw


def _ml1m_movies(path: Path) -> RawTable:
    raw = read_table(path, FileSpec(MOVIE_COLUMNS, "::", header=False, encoding="latin-1"))
    raw.frame["genres"] = raw.frame["genres"].str.replace("Children's", "Children", regex=False)
    return raw


def detect_layout(data_dir: Path) -> str:
    """Name the MovieLens layout of a folder from the files it holds."""
    if not data_dir.is_dir():
        raise DataError(
            data_dir,
            "data folder not found: pass --data DIR or set MOVIEREC_DATA to a MovieLens folder",
        )
    if (data_dir / "ratings.csv").exists() or (data_dir / "movies.csv").exists():
        return "csv"
    if (data_dir / "u.data").exists() or (data_dir / "u.item").exists():
        return "ml-100k"
    if (data_dir / "ratings.dat").exists() or (data_dir / "movies.dat").exists():
        return "ml-1m"
    raise DataError(
        data_dir,
        "not a MovieLens layout: expected ratings.csv + movies.csv "
        "(ml-latest, ml-25m, ml-32m), u.data + u.item (ml-100k) "
        "or ratings.dat + movies.dat (ml-1m)",
    )


def read_dataset(data_dir: str | Path) -> RawDataset:
    """Read ratings, movies and (where the layout has them) tags of a MovieLens folder."""
    data_dir = Path(data_dir)
    layout = detect_layout(data_dir)
    if layout == "ml-100k":
        ratings = read_table(data_dir / "u.data", FileSpec(RATING_COLUMNS, "\t", header=False))
        return RawDataset(layout, ratings, _ml100k_movies(data_dir / "u.item"), None)
    if layout == "ml-1m":
        spec = FileSpec(RATING_COLUMNS, "::", header=False, encoding="latin-1")
        ratings = read_table(data_dir / "ratings.dat", spec)
        return RawDataset(layout, ratings, _ml1m_movies(data_dir / "movies.dat"), None)
    tags_path = data_dir / "tags.csv"
    return RawDataset(
        layout,
        read_table(data_dir / "ratings.csv", FileSpec(RATING_COLUMNS)),
        read_table(data_dir / "movies.csv", FileSpec(MOVIE_COLUMNS)),
        read_table(tags_path, FileSpec(TAG_COLUMNS)) if tags_path.exists() else None,
    )
