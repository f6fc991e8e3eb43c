"""The three MovieLens layouts, written by the tests, read into one schema and run end to end.

One small catalogue is written in every layout, so the cleaned frames of all three must be
identical: any layout-specific quirk (encoding, genre flags, separators, unsorted rows) shows up
as a difference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.data.cleaning import clean
from pipeline.data.readers import ML100K_GENRES, FileSpec, detect_layout, read_dataset, read_table
from pipeline.run import PipelineParams, run_pipeline

# Genres in ml-100k flag order, so every layout yields the same '|'-joined string.
MOVIES = (
    (1, "Toy Story (1995)", ("Animation", "Children", "Comedy")),
    (2, "GoldenEye (1995)", ("Action", "Adventure", "Thriller")),
    (3, "Misérables, Les (1995)", ("Drama", "War")),
    (4, "Cité des enfants perdus, La (1995)", ("Adventure", "Sci-Fi")),
    (5, "Nénette et Boni (1996)", ("Drama",)),
    (6, "Unlisted (1990)", ()),
    (7, "Star Wars (1977)", ("Action", "Adventure", "Romance", "Sci-Fi", "War")),
    (8, "Fargo (1996)", ("Crime", "Drama", "Thriller")),
)
USERS = range(1, 7)
RATINGS_SCHEMA = {
    "userId": "uint32",
    "movieId": "uint32",
    "rating": "float32",
    "timestamp": "int32",
}


def _ratings() -> list[tuple[int, int, int, int]]:
    """Whole-star ratings (the old layouts have no half stars), most pairs rated."""
    return [
        (user, movie, 1 + (user * movie) % 5, 978_300_000 + 100 * user + movie)
        for user in USERS
        for movie, _, _ in MOVIES
        if (user + movie) % 4
    ]


def expected_ratings() -> pd.DataFrame:
    frame = pd.DataFrame(_ratings(), columns=list(RATINGS_SCHEMA))
    return frame.astype(RATINGS_SCHEMA).sort_values(["userId", "movieId"], ignore_index=True)


def expected_movies() -> pd.DataFrame:
    return pd.DataFrame({
        "movieId": np.array([m for m, _, _ in MOVIES], dtype=np.uint32),
        "title": [t for _, t, _ in MOVIES],
        "genres": ["|".join(g) for _, _, g in MOVIES],
    })  # fmt: skip


def ml100k_files() -> dict[str, bytes]:
    # u.data is not sorted by user in the real release; reversed order exercises the sort.
    data = "".join(f"{u}\t{m}\t{r}\t{t}\n" for u, m, r, t in reversed(_ratings()))
    items = []
    for movie, title, genres in MOVIES:
        flags = [name in genres or (name == "" and not genres) for name in ML100K_GENRES]
        fields = [str(movie), title, "01-Jan-1995", "", "http://us.imdb.com/M/title-exact?x"]
        items.append("|".join(fields + [str(int(f)) for f in flags]) + "\n")
    return {"u.data": data.encode(), "u.item": "".join(items).encode("latin-1")}


def ml1m_files() -> dict[str, bytes]:
    ratings = "".join(f"{u}::{m}::{r}::{t}\n" for u, m, r, t in _ratings())
    # ml-1m spells the genre "Children's"; the reader renames it.
    genre_text = {m: "|".join(g).replace("Children", "Children's") for m, _, g in MOVIES}
    movies = "".join(f"{movie}::{title}::{genre_text[movie]}\n" for movie, title, _ in MOVIES)
    return {"ratings.dat": ratings.encode(), "movies.dat": movies.encode("latin-1")}


def csv_files() -> dict[str, bytes]:
    ratings = "userId,movieId,rating,timestamp\n" + "".join(
        f"{u},{m},{r}.0,{t}\n" for u, m, r, t in _ratings()
    )
    movies = "movieId,title,genres\n" + "".join(
        f'{movie},"{title}",{"|".join(genres) or "(no genres listed)"}\n'
        for movie, title, genres in MOVIES
    )
    tags = "userId,movieId,tag,timestamp\n1,1,pixar,978300001\n2,7,space opera,978300002\n"
    return {
        "ratings.csv": ratings.encode(),
        "movies.csv": movies.encode(),
        "tags.csv": tags.encode(),
    }


LAYOUTS = {"ml-100k": ml100k_files, "ml-1m": ml1m_files, "csv": csv_files}


@pytest.fixture(params=sorted(LAYOUTS))
def layout_dir(request, write_dataset) -> tuple[str, Path]:
    return request.param, write_dataset(LAYOUTS[request.param](), name=request.param)


def test_detect_layout_names_each_layout(layout_dir):
    layout, folder = layout_dir
    assert detect_layout(folder) == layout


def test_every_layout_reads_into_the_same_schema_and_values(layout_dir):
    layout, folder = layout_dir
    data = clean(read_dataset(folder))
    assert data.ratings.dtypes.astype(str).to_dict() == RATINGS_SCHEMA
    pd.testing.assert_frame_equal(data.ratings, expected_ratings())
    pd.testing.assert_frame_equal(data.movies, expected_movies())
    assert data.report["layout"] == layout
    for name in ("ratings", "movies"):
        part = data.report[name]
        assert part["dropped"] == {}
        assert part["rows_in"] == part["rows_out"]


def test_latin1_titles_and_genre_names_survive(layout_dir):
    _, folder = layout_dir
    movies = clean(read_dataset(folder)).movies.set_index("movieId")
    assert movies.loc[3, "title"] == "Misérables, Les (1995)"
    assert movies.loc[1, "genres"] == "Animation|Children|Comedy"
    assert "Children's" not in "|".join(movies["genres"])
    assert movies.loc[6, "genres"] == ""


def test_full_pipeline_runs_on_every_layout(layout_dir, tmp_path):
    _, folder = layout_dir
    out = tmp_path / "out"
    run_pipeline(folder, out, PipelineParams(k=2, plots=False))
    clusters = pd.read_csv(out / "clusters_movies.csv")
    assert list(clusters.columns) == ["movieId", "title", "genres", "cluster"]
    assert sorted(clusters["movieId"]) == [m for m, _, _ in MOVIES]
    assert clusters["cluster"].between(0, 1).all()
    cleaned = pd.read_csv(out / "cleaned_ratings.csv")
    assert list(cleaned.columns) == list(RATINGS_SCHEMA)
    assert len(cleaned) == len(_ratings())
    favorites = pd.read_csv(out / "user_favorites.csv")
    assert sorted(favorites["userId"]) == list(USERS)


def test_csv_quoted_titles_keep_commas_and_quotes(write_dataset):
    movies = (
        "movieId,title,genres\n"
        '1,"Grumpier Old Men, The (1995)",Comedy|Romance\n'
        '2,"""Great Performances"" Cats (1998)",Musical\n'
        "3,Heat (1995),Action|Crime|Thriller\n"
    )
    folder = write_dataset({"movies.csv": movies})
    frame = read_table(folder / "movies.csv", FileSpec(("movieId", "title", "genres"))).frame
    assert frame["title"].tolist() == [
        "Grumpier Old Men, The (1995)",
        '"Great Performances" Cats (1998)',
        "Heat (1995)",
    ]


def test_csv_with_bom_crlf_and_extra_columns_reads_like_plain_csv(write_dataset):
    """ml-latest-small itself uses CRLF line ends; extra columns are ignored, order is free."""
    plain = "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.5,964981247\n"
    odd = (
        "\ufefftimestamp,rating,source,movieId,userId\r\n"
        "964982703,4.0,web,1,1\r\n964981247,4.5,app,3,1\r\n"
    )
    spec = FileSpec(("userId", "movieId", "rating", "timestamp"))
    expected = read_table(write_dataset({"r.csv": plain}, "plain") / "r.csv", spec).frame
    got = read_table(write_dataset({"r.csv": odd}, "odd") / "r.csv", spec).frame
    pd.testing.assert_frame_equal(got[expected.columns], expected)


def test_ml1m_titles_with_colons_keep_them(write_dataset):
    movies = "1::Star Wars: Episode IV - A New Hope (1977)::Action|Sci-Fi\n".encode("latin-1")
    folder = write_dataset({"ratings.dat": "1::1::5::978300760\n", "movies.dat": movies})
    data = clean(read_dataset(folder))
    assert data.movies["title"].tolist() == ["Star Wars: Episode IV - A New Hope (1977)"]
    assert data.ratings.iloc[0].tolist() == [1, 1, 5.0, 978300760]
