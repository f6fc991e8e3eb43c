"""Broken inputs end with one clear DataError naming the file and the problem, never a traceback."""

from __future__ import annotations

import gzip
import io
import re
import zipfile
from dataclasses import dataclass

import pytest

from pipeline.data.cleaning import clean
from pipeline.data.readers import read_dataset
from pipeline.errors import DataError

RATINGS = "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.5,964981247\n"
MOVIES = (
    "movieId,title,genres\n"
    "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
    '3,"Grumpier Old Men, The (1995)",Comedy|Romance\n'
)
U_DATA = "1\t1\t5\t874965758\n"
U_ITEM = "1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1" + "|0" * 13 + "\n"
RATINGS_DAT = "1::1::5::978300760\n"
MOVIES_DAT = "1::Toy Story (1995)::Animation|Children's|Comedy\n"


def _zip(name: str, text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, text)
    return buffer.getvalue()


@dataclass(frozen=True)
class Case:
    files: dict[str, str | bytes]
    culprit: str  # the file (or folder, "") the message must name
    problem: str  # regular expression the message must match
    folder: bool = True  # False: the data folder itself is never created


def csv_case(culprit: str, content: str | bytes | None, problem: str) -> Case:
    """The csv layout with one of its two files replaced (or, for None, left out)."""
    files = {"ratings.csv": RATINGS, "movies.csv": MOVIES}
    if content is None:
        del files[culprit]
    else:
        files[culprit] = content
    return Case(files, culprit, problem)


LATIN1_MOVIES = MOVIES.replace("Toy Story", "Cité des enfants").encode("latin-1")
CASES = {
    "ratings.csv missing": csv_case("ratings.csv", None, r"file not found"),
    "movies.csv missing": csv_case("movies.csv", None, r"file not found"),
    "ratings.csv empty": csv_case("ratings.csv", b"", r"empty file"),
    "ratings.csv header only": csv_case(
        "ratings.csv", "userId,movieId,rating,timestamp\n", r"no usable ratings.*0 rows read"
    ),
    "movies.csv header only": csv_case(
        "movies.csv", "movieId,title,genres\n", r"no usable movies.*0 rows read"
    ),
    "column missing": csv_case(
        "ratings.csv", RATINGS.replace(",rating,", ",score,"), r"missing column\(s\) rating\b"
    ),
    "semicolons": csv_case("ratings.csv", RATINGS.replace(",", ";"), r"wrong delimiter"),
    "tabs": csv_case("movies.csv", MOVIES.replace(",", "\t"), r"wrong delimiter"),
    "latin-1 movies.csv": csv_case("movies.csv", LATIN1_MOVIES, r"not utf-8 text.*line 2"),
    "latin-1 on a malformed row": csv_case(
        "movies.csv",
        LATIN1_MOVIES + "9,Déjà vu (1997),Drama,extra\n".encode("latin-1"),
        r"not utf-8 text",
    ),
    "binary garbage": csv_case("ratings.csv", bytes(range(256)) * 16, r"binary"),
    "gzip named ratings.csv": csv_case("ratings.csv", gzip.compress(RATINGS.encode()), r"gzip"),
    "zip named movies.csv": csv_case("movies.csv", _zip("movies.csv", MOVIES), r"zip"),
    "UTF-16 ratings.csv": csv_case("ratings.csv", RATINGS.encode("utf-16"), r"UTF-16"),
    "web page saved as ratings.csv": csv_case(
        "ratings.csv",
        "<!DOCTYPE html>\n<html><body>Not Found</body></html>\n",
        r"missing column\(s\) userId, movieId, rating, timestamp",
    ),
    "duplicated header column": csv_case(
        "ratings.csv",
        "userId,movieId,rating,rating,timestamp\n1,1,4.0,3.0,964982703\n",
        r"duplicated column\(s\) rating",
    ),
    "every rating invalid": csv_case(
        "ratings.csv",
        "userId,movieId,rating,timestamp\n1,1,7.0,1\n1,3,0.0,2\n1,3,x,3\n",
        r"no usable ratings.*rating_out_of_range",
    ),
    "every rating of an unknown movie": csv_case(
        "ratings.csv",
        "userId,movieId,rating,timestamp\n1,2,4.0,1\n1,4,4.0,2\n",
        r"no usable ratings.*unknown_movie",
    ),
    "every movie id invalid": csv_case(
        "movies.csv",
        "movieId,title,genres\n0,A (1995),Comedy\n-3,B (1995),Drama\n",
        r"no usable movies.*id_out_of_range",
    ),
    "ratings.csv is a folder": Case(
        {"ratings.csv/part-0.csv": RATINGS, "movies.csv": MOVIES}, "ratings.csv", r"is a folder"
    ),
    "empty folder": Case({}, "", r"not a MovieLens layout"),
    "folder does not exist": Case({}, "", r"data folder not found", folder=False),
    "unrelated files only": Case({"notes.txt": "hello\n"}, "", r"not a MovieLens layout"),
    "ml-100k u.item missing": Case({"u.data": U_DATA}, "u.item", r"file not found"),
    "ml-100k u.data binary": Case(
        {"u.data": bytes(range(256)) * 4, "u.item": U_ITEM}, "u.data", r"binary"
    ),
    "ml-100k u.data with commas": Case(
        {"u.data": U_DATA.replace("\t", ","), "u.item": U_ITEM},
        "u.data",
        r"4 tab-separated fields.*line 1",
    ),
    "ml-1m movies.dat missing": Case({"ratings.dat": RATINGS_DAT}, "movies.dat", r"file not found"),
    "ml-1m ratings.dat with commas": Case(
        {"ratings.dat": RATINGS_DAT.replace("::", ","), "movies.dat": MOVIES_DAT},
        "ratings.dat",
        r"4 '::'-separated fields.*line 1",
    ),
}


@pytest.fixture(params=list(CASES), ids=list(CASES))
def broken(request, tmp_path, write_dataset):
    case = CASES[request.param]
    folder = write_dataset(case.files) if case.folder else tmp_path / "nowhere"
    return case, folder


# pyarrow reports some decoding failures as "unraisable"; outside pytest they print a traceback.
@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_broken_input_raises_one_clear_error(broken, capfd):
    case, folder = broken
    with pytest.raises(DataError) as caught:
        clean(read_dataset(folder))
    error = caught.value
    assert error.path == str(folder / case.culprit if case.culprit else folder)
    assert re.search(case.problem, error.problem), error.problem
    assert str(error).startswith(f"{error.path}: ")
    assert "\n" not in str(error)
    assert len(str(error)) < 400, "the message should stay readable on one line"
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize(
    ("files", "culprit", "problem"),
    [
        ({"movies.csv": MOVIES}, "ratings.csv", "file not found"),
        ({"ratings.csv": RATINGS.replace(",", ";"), "movies.csv": MOVIES}, "ratings.csv", "wrong"),
    ],
    ids=["missing file", "wrong delimiter"],
)
def test_cli_prints_one_error_line_and_exits_1(
    files, culprit, problem, write_dataset, tmp_path, capsys
):
    from service.cli import main

    folder = write_dataset(files)
    code = main(["pipeline", "--data", str(folder), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("movierec: error:")]
    assert errors == [err.strip().splitlines()[-1]]
    assert errors[0].startswith(f"movierec: error: {folder / culprit}: {problem}")
