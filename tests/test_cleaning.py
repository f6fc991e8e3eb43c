"""Known answers for every cleaning rule, on tiny CSV folders with known line numbers."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.data.cleaning import EXAMPLES, clean
from pipeline.data.readers import read_dataset
from tests.conftest import Shape

RATINGS_HEADER = "userId,movieId,rating,timestamp\n"
MOVIES = (
    "movieId,title,genres\n"
    "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
    "2,Jumanji (1995),Adventure|Children|Fantasy\n"
    '3,"Grumpier Old Men, The (1995)",Comedy|Romance\n'
    "4,Waiting to Exhale (1995),Comedy|Drama|Romance\n"
    "5,Father of the Bride Part II (1995),Comedy\n"
    "4294967295,Largest Id (2000),(no genres listed)\n"
)


@pytest.fixture
def cleaned(write_dataset):
    """Clean a CSV folder from the given ratings rows (and optionally movies and tags)."""

    def run(ratings: str, movies: str = MOVIES, tags: str | None = None):
        files = {"ratings.csv": RATINGS_HEADER + ratings, "movies.csv": movies}
        if tags is not None:
            files["tags.csv"] = "userId,movieId,tag,timestamp\n" + tags
        data = clean(read_dataset(write_dataset(files)))
        for part in ("ratings", "movies", "tags"):
            if part in data.report:
                report = data.report[part]
                assert report["rows_in"] == report["rows_out"] + sum(report["dropped"].values())
        return data

    return run


def rows(frame) -> list[tuple]:
    return [tuple(r) for r in frame.itertuples(index=False)]


def test_repeated_pair_keeps_the_latest_and_names_exact_duplicates(cleaned):
    data = cleaned(
        "1,1,3.0,100\n"  # line 2: older, and exactly repeated on line 4
        "1,1,4.0,200\n"  # line 3: latest for (1, 1) -> kept
        "1,1,3.0,100\n"  # line 4
        "2,1,5.0,50\n"  # line 5: exact duplicate of line 6
        "2,1,5.0,50\n"  # line 6: kept
        "1,2,2.0,10\n"  # line 7
    )
    assert rows(data.ratings) == [(1, 1, 4.0, 200), (1, 2, 2.0, 10), (2, 1, 5.0, 50)]
    report = data.report["ratings"]
    assert report["dropped"] == {"duplicate": 2, "superseded": 1}
    assert report["examples"] == {"duplicate": [2, 5], "superseded": [4]}


def test_latest_timestamp_wins_over_file_order(cleaned):
    data = cleaned("1,1,4.0,200\n1,1,2.0,100\n")
    assert rows(data.ratings) == [(1, 1, 4.0, 200)]
    assert data.report["ratings"]["examples"] == {"superseded": [3]}


def test_same_timestamp_different_rating_keeps_the_later_line(cleaned):
    data = cleaned("1,1,3.0,100\n1,1,4.5,100\n")
    assert rows(data.ratings) == [(1, 1, 4.5, 100)]
    assert data.report["ratings"]["dropped"] == {"superseded": 1}


def test_ratings_are_sorted_by_user_then_movie(cleaned):
    data = cleaned("2,3,4.0,1\n1,5,4.0,2\n2,1,4.0,3\n1,2,4.0,4\n")
    assert rows(data.ratings)[:2] == [(1, 2, 4.0, 4), (1, 5, 4.0, 2)]
    assert data.ratings[["userId", "movieId"]].to_numpy().tolist() == [
        [1, 2],
        [1, 5],
        [2, 1],
        [2, 3],
    ]


def test_ratings_outside_range_or_off_the_half_star_grid_are_dropped(cleaned):
    values = ["0.0", "0.5", "5.0", "5.5", "-1", "3.25", "4.75", "2.5", "inf"]
    data = cleaned("".join(f"{user},1,{v},100\n" for user, v in enumerate(values, start=1)))
    assert data.ratings["rating"].tolist() == [0.5, 5.0, 2.5]
    report = data.report["ratings"]
    assert report["dropped"] == {"rating_out_of_range": 4, "rating_off_grid": 2}
    # line = 1 (header) + position in `values`
    assert report["examples"] == {"rating_out_of_range": [2, 5, 6, 10], "rating_off_grid": [7, 8]}


def test_ratings_of_unknown_movies_are_dropped(cleaned):
    data = cleaned("1,1,4.0,100\n1,99,4.0,100\n2,6,3.0,100\n")
    assert data.ratings["movieId"].tolist() == [1]
    report = data.report["ratings"]
    assert report["dropped"] == {"unknown_movie": 2}
    assert report["examples"] == {"unknown_movie": [3, 4]}


def test_ids_and_timestamps_outside_their_types_are_dropped_not_wrapped(cleaned):
    data = cleaned(
        "4294967295,4294967295,4.0,2147483647\n"  # line 2: the largest valid values -> kept
        "0,1,4.0,100\n"  # 3
        "-1,1,4.0,100\n"  # 4
        "4294967296,1,4.0,100\n"  # 5
        "1,0,4.0,100\n"  # 6
        "1.5,1,4.0,100\n"  # 7
        "99999999999999999999999,1,4.0,100\n"  # 8: past int64 too
        "1,1,4.0,2147483648\n"  # 9
        "1,1,4.0,-2147483649\n"  # 10
        "1,1,4.0,-1\n"  # 11: before 1970, older than MovieLens itself
        "2,1,4.0,0\n"  # 12: kept
    )
    assert rows(data.ratings) == [(2, 1, 4.0, 0), (4294967295, 4294967295, 4.0, 2147483647)]
    assert data.ratings["userId"].dtype == np.uint32
    assert data.ratings["timestamp"].dtype == np.int32
    report = data.report["ratings"]
    assert report["dropped"] == {"id_out_of_range": 6, "timestamp_out_of_range": 3}
    assert report["examples"] == {
        "id_out_of_range": [3, 4, 5, 6, 7],
        "timestamp_out_of_range": [9, 10, 11],
    }


def test_unparseable_values_and_wrong_field_counts_are_reported_by_line(cleaned):
    data = cleaned(
        "1,1,4.0,100\n"  # 2
        "1,2,abc,100\n"  # 3: unparseable rating
        "1,3,4.0\n"  # 4: three fields
        "1,4,4.0,100,9\n"  # 5: five fields
        "x,5,4.0,100\n"  # 6: unparseable user
        "\n"  # 7: blank line
        "1,5,3.0,100\n"  # 8
        "1,2,,100\n"  # 9: empty rating
        "2,1,9.0,100\n"  # 10
    )
    assert rows(data.ratings) == [(1, 1, 4.0, 100), (1, 5, 3.0, 100)]
    report = data.report["ratings"]
    assert report["rows_in"] == 9
    assert report["dropped"] == {
        "malformed_row": 2,
        "unparseable": 2,
        "missing_value": 2,
        "rating_out_of_range": 1,
    }
    assert report["examples"] == {
        "malformed_row": [4, 5],
        "unparseable": [3, 6],
        "missing_value": [7, 9],
        "rating_out_of_range": [10],
    }


def test_line_numbers_stay_exact_on_the_fast_path_after_a_blank_line(cleaned):
    data = cleaned("1,1,4.0,100\n\n1,2,7.0,100\n")
    report = data.report["ratings"]
    assert report["examples"] == {"missing_value": [3], "rating_out_of_range": [4]}


def test_examples_keep_the_first_few_lines_but_count_every_row(cleaned):
    data = cleaned("1,1,4.0,100\n" + "".join(f"{u},1,9.0,100\n" for u in range(2, 10)))
    report = data.report["ratings"]
    assert report["dropped"] == {"rating_out_of_range": 8}
    assert report["examples"]["rating_out_of_range"] == list(range(3, 3 + EXAMPLES))


def test_genres_no_genres_listed_means_empty_and_tokens_are_tidied(cleaned):
    movies = (
        "movieId,title,genres\n"
        "1,A (1995),(no genres listed)\n"
        "2,B (1995),Comedy| Drama|Comedy||\n"
        "3,C (1995),\n"
    )
    data = cleaned("1,1,4.0,100\n", movies=movies)
    assert data.movies["genres"].tolist() == ["", "Comedy|Drama", ""]


def test_bad_movie_rows_are_dropped_and_counted(cleaned):
    movies = (
        "movieId,title,genres\n"
        "1,Toy Story (1995),Comedy\n"  # 2
        "1,Toy Story again (1995),Comedy\n"  # 3: repeated id, the first stays
        "0,Zero (1995),Comedy\n"  # 4
        "7,,Drama\n"  # 5: no title
        "7,Seven (1995),Drama\n"  # 6: kept; the row above was never a movie
        "x,Ex (1995),Drama\n"  # 7
        "8,Eight (1995)\n"  # 8: two fields
    )
    data = cleaned("1,1,4.0,100\n1,7,4.0,100\n", movies=movies)
    assert rows(data.movies) == [(1, "Toy Story (1995)", "Comedy"), (7, "Seven (1995)", "Drama")]
    report = data.report["movies"]
    assert report["dropped"] == {
        "malformed_row": 1,
        "unparseable": 1,
        "missing_value": 1,
        "id_out_of_range": 1,
        "duplicate_id": 1,
    }
    assert report["examples"] == {
        "malformed_row": [8],
        "unparseable": [7],
        "missing_value": [5],
        "id_out_of_range": [4],
        "duplicate_id": [3],
    }


def test_tags_are_trimmed_split_lowercased_and_empties_dropped(cleaned):
    tags = (
        "1,1,  Pixar  ,100\n"  # 2
        "1,1,funny|  Buddy Movie |,100\n"  # 3
        "1,2,| ,100\n"  # 4: nothing left
        "1,2,,100\n"  # 5: empty
        "1,99,classic,100\n"  # 6: unknown movie
        "2,1,PIXAR,100\n"  # 7
        "2,1,pixar,101\n"  # 8: same tag for the same user and movie
    )
    data = cleaned("1,1,4.0,100\n", tags=tags)
    assert rows(data.tags) == [
        (1, 1, "Pixar", "pixar"),
        (1, 1, "funny", "funny"),
        (1, 1, "Buddy Movie", "buddy movie"),
        (2, 1, "PIXAR", "pixar"),
    ]
    report = data.report["tags"]
    assert report["dropped"] == {"unknown_movie": 1, "empty_tag": 2}
    assert report["examples"] == {"unknown_movie": [6], "empty_tag": [4, 5]}
    assert report["tags_out"] == 4


def test_cleaned_dtypes_are_the_compact_ones(cleaned):
    data = cleaned("1,1,4.0,100\n", tags="1,1,pixar,100\n")
    assert data.ratings.dtypes.astype(str).to_dict() == {
        "userId": "uint32",
        "movieId": "uint32",
        "rating": "float32",
        "timestamp": "int32",
    }
    assert data.movies["movieId"].dtype == np.uint32
    assert data.tags[["userId", "movieId"]].dtypes.astype(str).tolist() == ["uint32", "uint32"]


@pytest.mark.parametrize("folder", ["small_data", "sample_data"])
def test_a_release_cleans_without_losing_a_row(folder, request):
    """The synthetic folder, and the real sample with its own quirks, keep every row."""
    path = request.getfixturevalue(folder)
    data, shape = clean(read_dataset(path)), Shape.of(path)
    assert len(data.ratings) == shape.ratings
    assert len(data.movies) == shape.movies
    assert data.ratings["userId"].nunique() == shape.users
    for part in ("ratings", "movies", "tags"):
        assert data.report[part]["dropped"] == {}


def test_repeated_tags_are_counted_not_silently_lost(tmp_path):
    from pipeline.data.cleaning import clean
    from pipeline.data.readers import read_dataset

    (tmp_path / "movies.csv").write_text("movieId,title,genres\n1,A (2000),Drama\n")
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,10\n")
    (tmp_path / "tags.csv").write_text(
        "userId,movieId,tag,timestamp\n1,1,Funny,10\n1,1,funny|dark,11\n2,1,funny,12\n"
    )
    data = clean(read_dataset(tmp_path))
    assert sorted(data.tags["filtered"]) == ["dark", "funny", "funny"]
    assert data.report["tags"]["duplicate_tags_dropped"] == 1
    assert data.report["tags"]["rows_in"] == data.report["tags"]["rows_out"] == 3
