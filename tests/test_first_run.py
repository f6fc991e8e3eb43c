"""A first run with no data beside the repository: the sample is fetched once from a mirror
(here an archive made from the synthetic folder, its checksum pinned for the test)."""

from __future__ import annotations

import signal
import socket
import sys
from functools import partial
from pathlib import Path

import pytest

from pipeline import settings
from pipeline.data import download
from pipeline.settings import SAMPLE, SampleUnavailable, data_dir, data_on_disk, find_data_dir
from service.cli import main
from service.embedded_redis import free_port
from tests.conftest import Mirror
from tests.serving_helpers import http, serving_env, spawn_cli, stop, wait_until

FIX_IT = (f"movierec download --dataset {SAMPLE} --to DIR", "export MOVIEREC_DATA=")


def without_sample(pinned_md5: str) -> str:
    """`movierec` on a machine without ../shared/data beside the repository, where the sample
    archive's pinned checksum is `pinned_md5` (the test's archive's)."""
    return (
        "import pathlib, sys; import pipeline.settings as s; import pipeline.data.download as d; "
        "s.BUNDLED_SAMPLE = pathlib.Path('/nonexistent'); "
        f"d.DATASETS[s.SAMPLE] = {pinned_md5!r}; "
        "from service.cli import main; sys.exit(main(sys.argv[1:]))"
    )


@pytest.fixture
def no_sample(monkeypatch, tmp_path: Path) -> Path:
    """No MOVIEREC_DATA and no sample beside the repository; returns the output folder."""
    monkeypatch.delenv("MOVIEREC_DATA", raising=False)
    monkeypatch.setattr(settings, "BUNDLED_SAMPLE", tmp_path / "nowhere")
    out = tmp_path / "out"
    monkeypatch.setenv("MOVIEREC_OUTPUT", str(out))
    return out


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/"  # nothing listens once the probe is closed


def test_the_rule_prefers_the_flag_then_the_sample_beside_the_repository(no_sample, tmp_path):
    assert find_data_dir("given", no_sample) == Path("given")
    assert find_data_dir(None, no_sample) is None
    beside = tmp_path / "shared" / SAMPLE
    beside.mkdir(parents=True)
    settings.BUNDLED_SAMPLE = beside
    assert find_data_dir(None, no_sample) == beside


def test_without_downloading_the_rule_finds_movierec_data_then_an_earlier_download(
    no_sample, monkeypatch, mirror: Mirror, served_archive
):
    """`data_on_disk`, which the tests needing the real sample share with `movierec up`."""
    assert data_on_disk() is None and mirror.requests == []  # it never downloads
    monkeypatch.setenv(settings.DOWNLOAD_URL_VARIABLE, mirror.url)
    downloaded = data_dir(None, None, print)
    assert data_on_disk() == downloaded == no_sample / "data" / SAMPLE
    monkeypatch.setenv("MOVIEREC_DATA", "chosen")
    assert data_on_disk() == Path("chosen")
    assert data_on_disk("flag") == Path("flag")


def test_the_sample_is_downloaded_once_into_the_output_folder(
    no_sample, monkeypatch, mirror: Mirror, served_archive
):
    monkeypatch.setenv(settings.DOWNLOAD_URL_VARIABLE, mirror.url)
    said: list[str] = []
    folder = data_dir(None, None, said.append)
    assert folder == no_sample / "data" / SAMPLE and (folder / "ratings.csv").is_file()
    assert len(said) == 1 and mirror.url in said[0] and "once" in said[0]
    assert data_dir(None, None, said.append) == folder
    assert len(said) == 1 and mirror.requests == [f"/{SAMPLE}.zip"]


def test_a_wrong_checksum_is_refused_and_leaves_nothing_unpacked(
    no_sample, monkeypatch, mirror: Mirror
):
    (mirror.folder / f"{SAMPLE}.zip").write_bytes(b"PK\x03\x04 not the real archive")
    monkeypatch.setenv(settings.DOWNLOAD_URL_VARIABLE, mirror.url)
    with pytest.raises(SampleUnavailable) as refused:
        data_dir(None, None, print)
    assert "checksum" in str(refused.value)
    assert all(command in str(refused.value) for command in FIX_IT)
    assert list((no_sample / "data").iterdir()) == []


def test_without_network_the_error_alone_says_what_to_do(no_sample, monkeypatch, capsys):
    monkeypatch.setenv(settings.DOWNLOAD_URL_VARIABLE, closed_port_url())
    assert main(["pipeline", "--no-plots"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("movierec: error: no MovieLens data")
    assert "cannot reach the server" in err and all(command in err for command in FIX_IT)
    assert "Traceback" not in err and "None" not in err


@pytest.mark.e2e
def test_up_with_no_data_downloads_the_sample_once_and_comes_up(
    tmp_path, mirror: Mirror, served_archive
):
    port = free_port()
    env = serving_env(
        MOVIEREC_OUTPUT=str(tmp_path / "out"),
        MOVIEREC_API_TOKEN="first-run",
        MOVIEREC_DOWNLOAD_URL=mirror.url,
    )
    env.pop("MOVIEREC_DATA", None)
    argv = ["up", "--bind", f"127.0.0.1:{port}", "--workers", "1", "--concurrency", "1"]
    for run in (1, 2):
        log = tmp_path / f"up-{run}.log"
        script = without_sample(download.DATASETS[SAMPLE])  # as served_archive pinned it
        process = spawn_cli(argv, env, log, prefix=[sys.executable, "-c", script])
        try:
            healthy = partial(up_and_healthy, process, log, port)
            wait_until(healthy, 180, f"/health (see {log})", 0.5)
        finally:
            assert stop(process, signal.SIGINT, timeout=90) == 0
        assert mirror.requests == [f"/{SAMPLE}.zip"]  # the second start downloads nothing
    first = (tmp_path / "up-1.log").read_text()
    assert f"downloaded the MovieLens {SAMPLE} sample" in first
    assert str(tmp_path / "out" / "data" / SAMPLE) in first
    assert "downloaded" not in (tmp_path / "up-2.log").read_text()


def up_and_healthy(process, log: Path, port: int) -> bool:
    assert process.poll() is None, log.read_text()[-3000:]
    try:
        return http("GET", f"http://127.0.0.1:{port}/health")[0] == 200
    except OSError:
        return False
