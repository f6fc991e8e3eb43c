"""`movierec download` against a local HTTP server serving an archive laid out like GroupLens's,
made from the synthetic folder, its checksum pinned for the test."""

from __future__ import annotations

import hashlib
import socket
import zipfile
from pathlib import Path

import pytest

from pipeline.data import download
from pipeline.data.download import MARKER, DownloadError, unpack
from service.cli import main
from tests.conftest import Mirror

NAME = "ml-latest-small"


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["download", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def download_args(dest: Path, url: str, name: str = NAME) -> list[str]:
    return ["--dataset", name, "--to", str(dest), "--base-url", url]


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("movierec: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_download_verifies_and_unpacks_the_archive(
    capsys, tmp_path: Path, mirror: Mirror, served_archive: Path, small_data: Path
) -> None:
    dest = tmp_path / "data"
    code, out, _ = run_cli(capsys, *download_args(dest, mirror.url))

    assert code == 0
    assert "downloaded and verified" in out
    assert sorted(p.name for p in dest.iterdir()) == [NAME]  # no temp file or folder left
    reference = small_data
    for original in reference.iterdir():
        assert (dest / NAME / original.name).read_bytes() == original.read_bytes()
    assert sorted(p.name for p in (dest / NAME).iterdir()) == sorted(
        [MARKER, *(p.name for p in reference.iterdir())]
    )


def test_second_download_is_a_no_op(
    capsys, tmp_path: Path, mirror: Mirror, served_archive: Path
) -> None:
    dest = tmp_path / "data"
    assert run_cli(capsys, *download_args(dest, mirror.url))[0] == 0
    fetched = len(mirror.requests)

    code, out, _ = run_cli(capsys, *download_args(dest, mirror.url))

    assert code == 0
    assert "already present and complete" in out
    assert len(mirror.requests) == fetched


def test_incomplete_copy_is_downloaded_again(
    capsys, tmp_path: Path, mirror: Mirror, served_archive: Path, small_data: Path
) -> None:
    dest = tmp_path / "data"
    assert run_cli(capsys, *download_args(dest, mirror.url))[0] == 0
    (dest / NAME / "ratings.csv").unlink()

    code, out, _ = run_cli(capsys, *download_args(dest, mirror.url))

    assert code == 0
    assert "downloaded and verified" in out
    restored = (dest / NAME / "ratings.csv").read_bytes()
    assert restored == (small_data / "ratings.csv").read_bytes()
    assert sorted(p.name for p in dest.iterdir()) == [NAME]


def test_checksum_mismatch_names_both_md5s_and_leaves_nothing(
    capsys, tmp_path: Path, mirror: Mirror, served_archive: Path
) -> None:
    corrupted = bytearray(served_archive.read_bytes())
    corrupted[len(corrupted) // 2] ^= 0xFF
    served_archive.write_bytes(bytes(corrupted))
    dest = tmp_path / "data"

    code, _, err = run_cli(capsys, *download_args(dest, mirror.url))

    actual = hashlib.md5(corrupted, usedforsecurity=False).hexdigest()
    assert_one_line_error(code, err, "checksum mismatch", download.DATASETS[NAME], actual)
    assert list(dest.iterdir()) == []


def test_unreachable_server_is_one_clear_line(capsys, tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago and has no listener now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dest = tmp_path / "data"

    code, _, err = run_cli(capsys, *download_args(dest, f"http://127.0.0.1:{port}"))

    assert_one_line_error(code, err, "cannot reach the server", f"127.0.0.1:{port}")
    assert list(dest.iterdir()) == []


def test_silent_server_times_out_with_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as silent:  # accepts connections (via the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"

        with pytest.raises(DownloadError, match=r"no answer within 0\.5 s"):
            download.download_dataset(NAME, tmp_path / "data", url, timeout=0.5)

    assert list((tmp_path / "data").iterdir()) == []


def test_missing_archive_reports_the_http_status(capsys, tmp_path: Path, mirror: Mirror) -> None:
    dest = tmp_path / "data"

    code, _, err = run_cli(capsys, *download_args(dest, mirror.url, name="ml-100k"))

    assert_one_line_error(code, err, "HTTP 404", "ml-100k.zip")
    assert list(dest.iterdir()) == []


def test_a_folder_not_made_by_download_is_left_alone(
    capsys, tmp_path: Path, mirror: Mirror, served_archive: Path
) -> None:
    mine = tmp_path / "data" / NAME
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("keep me")

    code, _, err = run_cli(capsys, *download_args(tmp_path / "data", mirror.url))

    assert_one_line_error(code, err, "not made by a verified download", str(mine))
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    assert mirror.requests == []


@pytest.mark.parametrize("member", ["../escaped.txt", "/tmp/absolute-escape.txt", "a/../../up.txt"])
def test_unpack_refuses_members_outside_the_target(tmp_path: Path, member: str) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("ml-latest-small/movies.csv", "movieId,title,genres\n")
        bundle.writestr(member, "x")
    staging = tmp_path / "stage" / "inner"
    staging.mkdir(parents=True)

    with pytest.raises(DownloadError, match="unsafe member path"):
        unpack(archive, staging, NAME)

    assert list(staging.iterdir()) == []
    assert not (tmp_path / "stage" / "escaped.txt").exists()


def test_unpack_rejects_a_file_that_is_not_a_zip(tmp_path: Path) -> None:
    archive = tmp_path / "broken.zip"
    archive.write_bytes(b"<html>Service Unavailable</html>")
    staging = tmp_path / "stage"
    staging.mkdir()

    with pytest.raises(DownloadError, match="not a valid zip archive"):
        unpack(archive, staging, NAME)


def test_unpack_uses_the_top_level_folder_as_root(tmp_path: Path) -> None:
    archive = tmp_path / "ok.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("ml-1m/movies.dat", "1::Toy Story (1995)::Animation\n")
    staging = tmp_path / "stage"
    staging.mkdir()

    root = unpack(archive, staging, "ml-1m")

    assert root == staging.resolve() / "ml-1m"
    assert (root / "movies.dat").read_text().startswith("1::Toy Story")
