"""Cleaning rules for MovieLens: every dropped row is counted by reason, with example lines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pipeline.data.genres import tidy_genres
from pipeline.data.indexing import positions_of
from pipeline.data.readers import RATING_DTYPES, RawDataset, RawTable
from pipeline.errors import DataError

UINT32_MAX = np.iinfo(np.uint32).max
INT32_MAX = np.iinfo(np.int32).max
EXAMPLES = 5


@dataclass
class FileReport:
    """Rows in, rows out and rows dropped per reason for one input file."""

    path: str
    rows_in: int
    dropped: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[int]] = field(default_factory=dict)
    rows_out: int = 0
    duplicate_tokens: int = 0  # tags only: the same tag by the same user on the same movie

    def drop(self, reason: str, lines: np.ndarray) -> None:
        if len(lines) == 0:
            return
        self.dropped[reason] = self.dropped.get(reason, 0) + len(lines)
        # One reason can be hit by several checks; keep its first lines, not the first check's.
        first = (int(x) for x in np.sort(lines)[:EXAMPLES])
        self.examples[reason] = sorted([*self.examples.get(reason, []), *first])[:EXAMPLES]

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "dropped": self.dropped,
            "examples": self.examples,
        }


@dataclass
class CleanData:
    ratings: pd.DataFrame
    movies: pd.DataFrame
    tags: pd.DataFrame
    report: dict[str, Any]


class _Filter:
    """Drops rows from a raw table reason by reason, each row counted under its first reason."""

    def __init__(self, raw: RawTable) -> None:
        self.raw = raw
        self.frame = raw.frame
        self.keep = np.ones(len(raw.frame), dtype=bool)
        self.report = FileReport(str(raw.path), raw.rows_in)
        for reason, lines in raw.rejected.items():
            self.report.drop(reason, lines)

    def drop(self, reason: str, bad: np.ndarray) -> None:
        hit = bad & self.keep
        if hit.any():
            self.report.drop(reason, self.raw.line_numbers(hit))
            self.keep &= ~hit

    def drop_positions(self, reason: str, positions: np.ndarray) -> None:
        mask = np.zeros(len(self.keep), dtype=bool)
        mask[positions] = True
        self.drop(reason, mask)

    def column(self, name: str) -> np.ndarray:
        return self.frame[name].to_numpy()

    def missing(self, columns: tuple[str, ...]) -> None:
        nullable = [c for c in columns if not _integers(self.frame[c].dtype)]
        if nullable:
            self.drop("missing_value", self.frame[nullable].isna().to_numpy().any(axis=1))

    def ids(self, columns: tuple[str, ...]) -> None:
        for name in columns:
            self.drop_outside("id_out_of_range", name, 1, UINT32_MAX)

    def timestamps(self) -> None:
        self.drop_outside("timestamp_out_of_range", "timestamp", 0, INT32_MAX)

    def drop_outside(self, reason: str, name: str, low: int, high: int) -> None:
        """Drop values outside [low, high] or not whole; integers in range need no mask."""
        value = self.column(name)
        if _integers(value.dtype) and (
            len(value) == 0 or low <= value.min() <= value.max() <= high
        ):
            return
        value = value.astype(np.float64)
        self.drop(reason, (value < low) | (value > high) | (value != np.floor(value)))

    def known_movies(self, movie_ids: np.ndarray) -> None:
        self.drop("unknown_movie", positions_of(movie_ids, self.column("movieId")) < 0)

    def kept(self) -> pd.DataFrame:
        return self.frame.loc[self.keep].reset_index(drop=True)


def _integers(dtype: Any) -> bool:
    """A NumPy integer column: it cannot hold a missing value, nor a fraction."""
    return isinstance(dtype, np.dtype) and dtype.kind in "iu"


def _split_genres(genres: pd.Series) -> pd.Series:
    return genres.fillna("").astype(str).map(tidy_genres)


def clean_movies(raw: RawTable) -> tuple[pd.DataFrame, FileReport]:
    f = _Filter(raw)
    f.frame = f.frame.assign(title=f.frame["title"].astype("string").str.strip())
    f.missing(("movieId", "title"))
    f.drop("missing_value", (f.frame["title"] == "").fillna(True).to_numpy())
    f.ids(("movieId",))
    # Only rows still kept compete for an id: a dropped row must not shadow a valid one.
    f.drop("duplicate_id", f.frame["movieId"].where(f.keep).duplicated().to_numpy())
    movies = f.kept()
    movies = pd.DataFrame({
        "movieId": movies["movieId"].astype(np.uint32),
        "title": movies["title"].astype(str),
        "genres": _split_genres(movies["genres"]),
    }).sort_values("movieId", ignore_index=True)  # fmt: skip
    f.report.rows_out = len(movies)
    return movies, f.report


def _dedupe(f: _Filter) -> np.ndarray | slice:
    """Positions of the kept rows ordered by (userId, movieId), one row per pair: the latest.

    MovieLens files are already sorted by user and movie, so the common case is one linear check;
    when every row is kept as well, the answer is all rows in place: `slice(None)`.
    """
    everything = bool(f.keep.all())
    positions = slice(None) if everything else np.flatnonzero(f.keep)
    key = f.column("userId")[positions].astype(np.uint64) << np.uint64(32)
    key |= f.column("movieId")[positions].astype(np.uint64)
    if len(key) < 2 or bool(np.all(key[1:] > key[:-1])):
        return positions
    if everything:
        positions = np.arange(len(key))
    order = np.argsort(key, kind="stable")
    positions, key = positions[order], key[order]
    repeated = np.zeros(len(key), dtype=bool)
    repeated[1:] = key[1:] == key[:-1]
    repeated[:-1] |= repeated[1:]
    group = pd.DataFrame({
        "key": key[repeated],
        "timestamp": f.column("timestamp")[positions[repeated]],
        "rating": f.column("rating")[positions[repeated]],
        "position": positions[repeated],
    }).sort_values(["key", "timestamp", "position"])  # fmt: skip
    exact = group.duplicated(["key", "timestamp", "rating"], keep="last").to_numpy()
    older = group.duplicated("key", keep="last").to_numpy() & ~exact
    f.drop_positions("duplicate", group["position"].to_numpy()[exact])
    f.drop_positions("superseded", group["position"].to_numpy()[older])
    return positions[f.keep[positions]]


def clean_ratings(raw: RawTable, movie_ids: np.ndarray) -> tuple[pd.DataFrame, FileReport]:
    f = _Filter(raw)
    f.missing(("userId", "movieId", "rating", "timestamp"))
    f.ids(("userId", "movieId"))
    f.timestamps()
    rating = f.column("rating").astype(np.float64, copy=False)
    f.drop("rating_out_of_range", ~((rating >= 0.5) & (rating <= 5.0)))
    f.drop("rating_off_grid", rating * 2 != np.round(rating * 2))
    f.known_movies(movie_ids)
    rows = _dedupe(f)
    # columns read in their final type and kept whole are not copied
    ratings = pd.DataFrame({
        c: f.column(c)[rows].astype(t, copy=False) for c, t in RATING_DTYPES.items()
    })  # fmt: skip
    f.report.rows_out = len(ratings)
    return ratings, f.report


def clean_tags(raw: RawTable, movie_ids: np.ndarray) -> tuple[pd.DataFrame, FileReport]:
    f = _Filter(raw)
    f.missing(("userId", "movieId", "tag", "timestamp"))
    f.ids(("userId", "movieId"))
    f.timestamps()
    f.known_movies(movie_ids)
    token = f.frame["tag"].astype("string").str.split("|").explode().str.strip()
    real = (token != "").fillna(False)
    has_token = real.groupby(level=0).any().reindex(f.frame.index, fill_value=False)
    f.drop("empty_tag", ~has_token.to_numpy(dtype=bool))
    rows = token.index.to_numpy()
    chosen = real.to_numpy(dtype=bool) & f.keep[rows]
    kept = f.frame.iloc[rows[chosen]].assign(tag=token.to_numpy()[chosen])
    kept["filtered"] = kept["tag"].str.lower()
    tokens = pd.DataFrame({
        "userId": kept["userId"].astype(np.uint32),
        "movieId": kept["movieId"].astype(np.uint32),
        "tag": kept["tag"].astype(str),
        "filtered": kept["filtered"].astype(str),
    })  # fmt: skip
    tags = tokens.drop_duplicates(["userId", "movieId", "filtered"], ignore_index=True)
    f.report.rows_out = int(f.keep.sum())
    f.report.duplicate_tokens = len(tokens) - len(tags)
    return tags, f.report


def _require(rows: pd.DataFrame, report: FileReport, what: str) -> None:
    if len(rows) == 0:
        raise DataError(
            report.path,
            f"no usable {what} after cleaning "
            f"({report.rows_in} rows read, dropped: {report.dropped or 'none'})",
        )


def clean(raw: RawDataset) -> CleanData:
    """Apply every rule; fail with the file named when nothing usable is left."""
    movies, movie_report = clean_movies(raw.movies)
    _require(movies, movie_report, "movies")
    ids = movies["movieId"].to_numpy()
    ratings, rating_report = clean_ratings(raw.ratings, ids)
    _require(ratings, rating_report, "ratings")
    report = {
        "layout": raw.layout,
        "movies": movie_report.as_dict(),
        "ratings": rating_report.as_dict(),
    }
    if raw.tags is None:
        tags = pd.DataFrame(
            {
                "userId": pd.Series(dtype=np.uint32),
                "movieId": pd.Series(dtype=np.uint32),
                "tag": pd.Series(dtype=str),
                "filtered": pd.Series(dtype=str),
            }
        )
    else:
        tags, tag_report = clean_tags(raw.tags, ids)
        report["tags"] = tag_report.as_dict() | {
            "tags_out": len(tags),
            "duplicate_tags_dropped": tag_report.duplicate_tokens,
        }
    return CleanData(ratings, movies, tags, report)
