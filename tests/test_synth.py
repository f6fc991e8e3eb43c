"""`movierec synth`: MovieLens-shaped, deterministic, and readable like a real release."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.data.readers import read_dataset
from pipeline.data.synth import (
    ACCENTED_WORDS,
    GENRE_SHARES,
    MIN_RATINGS_PER_USER,
    NO_GENRES,
    Shape,
    generate,
    synthesize,
)
from pipeline.errors import ParameterError
from service.cli import main

N = 20_000
FILES = ("movies.csv", "ratings.csv", "tags.csv")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    synthesize(N, out, seed=42)
    return out


@pytest.fixture(scope="module")
def ratings(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "ratings.csv")


@pytest.fixture(scope="module")
def movies(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "movies.csv")


def test_same_seed_gives_byte_identical_files(folder: Path, tmp_path: Path) -> None:
    synthesize(N, tmp_path / "again", seed=42)
    synthesize(N, tmp_path / "other", seed=7)

    for name in FILES:
        assert (tmp_path / "again" / name).read_bytes() == (folder / name).read_bytes()
    assert (tmp_path / "other" / "ratings.csv").read_bytes() != (
        folder / "ratings.csv"
    ).read_bytes()


def test_headers_are_exactly_movielens(folder: Path) -> None:
    first_lines = {name: (folder / name).open().readline() for name in FILES}
    assert first_lines == {
        "movies.csv": "movieId,title,genres\n",
        "ratings.csv": "userId,movieId,rating,timestamp\n",
        "tags.csv": "userId,movieId,tag,timestamp\n",
    }


def test_exactly_n_ratings_and_every_user_has_the_minimum(ratings: pd.DataFrame) -> None:
    per_user = ratings.groupby("userId").size()

    assert len(ratings) == N
    assert per_user.min() >= MIN_RATINGS_PER_USER
    assert list(per_user.index) == list(range(1, Shape.for_ratings(N).users + 1))
    assert per_user.max() > 5 * per_user.median()  # log-normal activity: a few heavy raters


def test_no_duplicate_pairs_and_sorted_like_movielens(ratings: pd.DataFrame) -> None:
    assert not ratings.duplicated(["userId", "movieId"]).any()
    assert ratings.equals(ratings.sort_values(["userId", "movieId"], ignore_index=True))


def test_ratings_are_half_stars_written_with_one_decimal(
    folder: Path, ratings: pd.DataFrame
) -> None:
    lines = (folder / "ratings.csv").read_text().splitlines()[1:]
    assert all(re.fullmatch(r"\d+,\d+,[0-5]\.[05],\d+", line) for line in lines)
    assert ratings["rating"].between(0.5, 5.0).all()
    assert (ratings["rating"] * 2 == (ratings["rating"] * 2).round()).all()


def test_rating_mix_looks_like_movielens(ratings: pd.DataFrame) -> None:
    shares = ratings["rating"].value_counts(normalize=True)

    assert shares.idxmax() == 4.0
    assert 3.3 < ratings["rating"].mean() < 3.7
    assert shares[[3.0, 4.0, 5.0]].sum() > shares[[2.5, 3.5, 4.5]].sum()  # whole stars dominate


def test_ratings_follow_movie_quality(ratings: pd.DataFrame) -> None:
    """A movie's mean in one half of its raters predicts its mean in the other half."""
    rated = ratings[ratings.groupby("movieId")["movieId"].transform("size") >= 20]
    half = rated.groupby("movieId").cumcount() % 2
    means = rated.groupby([half, rated["movieId"]])["rating"].mean().unstack(0)

    assert np.corrcoef(means[0], means[1])[0, 1] > 0.5


def test_popularity_is_skewed(ratings: pd.DataFrame, movies: pd.DataFrame) -> None:
    per_movie = ratings["movieId"].value_counts()
    top_tenth = per_movie.iloc[: len(movies) // 10].sum()

    assert top_tenth / len(ratings) > 0.6


def test_movies_have_movielens_titles_and_genres(folder: Path, movies: pd.DataFrame) -> None:
    with (folder / "movies.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    assert all(len(row) == 3 for row in rows)
    assert any(", The (" in title for _, title, _ in rows)
    assert movies["movieId"].is_unique
    assert movies["title"].str.fullmatch(r"Synthetic Movie \d+(, The)? \((19|20)\d\d\)").all()

    genre_lists = movies["genres"].str.split("|")
    assert genre_lists.map(len).between(1, 3).all()
    assert genre_lists.map(lambda genres: genres == sorted(genres)).all()
    assert set(genre_lists.explode()) <= {*GENRE_SHARES, NO_GENRES}
    share = movies["genres"].str.get_dummies("|").mean()
    assert share.idxmax() == "Drama"
    assert 0.35 < share["Drama"] < 0.55
    assert 0 < share[NO_GENRES] < 0.05


def test_tags_and_ratings_point_at_known_movies_and_users(
    folder: Path, ratings: pd.DataFrame, movies: pd.DataFrame
) -> None:
    tags = pd.read_csv(folder / "tags.csv")

    assert 0 < len(tags) < 0.1 * len(ratings)
    assert set(ratings["movieId"]) <= set(movies["movieId"])
    rated = set(zip(ratings["userId"], ratings["movieId"], strict=True))
    assert set(zip(tags["userId"], tags["movieId"], strict=True)) <= rated


def test_timestamps_fall_in_1996_to_2018(folder: Path, ratings: pd.DataFrame) -> None:
    tags = pd.read_csv(folder / "tags.csv")
    for stamps in (ratings["timestamp"], tags["timestamp"]):
        years = pd.to_datetime(stamps, unit="s").dt.year
        assert years.between(1996, 2018).all()


def test_accented_titles_open_every_nth_title_and_change_nothing_else() -> None:
    plain, accented = generate(2_000, seed=3), generate(2_000, seed=3, accented_every=4)

    assert accented.ratings.equals(plain.ratings) and accented.tags.equals(plain.tags)
    pd.testing.assert_frame_equal(
        accented.movies.drop(columns="title"), plain.movies.drop(columns="title")
    )
    changed = accented.movies["title"] != plain.movies["title"]
    assert changed.tolist() == [i % 4 == 0 for i in range(len(plain.movies))]
    words = (ACCENTED_WORDS[k % len(ACCENTED_WORDS)] for k in range(int(changed.sum())))
    titles = plain.movies["title"][changed]
    expected = [f"{word} {title}" for word, title in zip(words, titles, strict=False)]
    assert accented.movies["title"][changed].tolist() == expected


def test_accented_titles_are_written_as_utf8_and_read_back(tmp_path: Path) -> None:
    synthesize(2_000, tmp_path, seed=3, accented_every=4)
    raw = (tmp_path / "movies.csv").read_bytes()
    assert all(word.encode() in raw for word in ACCENTED_WORDS)
    titles = set(read_dataset(tmp_path).movies.frame["title"])
    assert any(not title.isascii() for title in titles)
    assert set(pd.read_csv(tmp_path / "movies.csv", encoding="utf-8")["title"]) == titles


def test_accented_every_below_one_is_refused() -> None:
    with pytest.raises(ParameterError, match="at least 1"):
        generate(1_000, accented_every=-1)


def test_sizes_scale_like_the_real_releases() -> None:
    small, large = Shape.for_ratings(100_836), Shape.for_ratings(25_000_095)

    assert small.movies == 9_742
    assert large.movies == 62_423
    assert 600 <= small.users <= 700
    assert 155_000 <= large.users <= 170_000
    assert Shape.for_ratings(MIN_RATINGS_PER_USER).users == 1


def synth_command(*argv: str) -> int:
    return main(["synth", *argv])


def test_cli_writes_the_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert synth_command("--ratings", "1000", "--out", str(tmp_path / "out"), "--seed", "3") == 0
    assert "wrote 1,000 ratings" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(FILES)


def test_cli_refuses_fewer_ratings_than_one_user_needs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        synth_command("--ratings", "19", "--out", "unused")

    assert exit_info.value.code == 2
    assert "at least 20" in capsys.readouterr().err


def test_cli_reports_an_unwritable_folder_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert synth_command("--ratings", "1000", "--out", str(blocker / "out")) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("movierec: error: ") and "cannot write" in err and "\n" not in err
