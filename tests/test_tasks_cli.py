"""The serving commands of the CLI, against a fakeredis cache."""

from __future__ import annotations

import json

import fakeredis
import pytest

from cache import versions
from cache.settings import get_settings
from service.cli import main
from tests.serving_helpers import fake_version

V1, V2 = "20260101T000000Z-aaaa", "20260102T000000Z-bbbb"


@pytest.fixture
def r(monkeypatch, tmp_path):
    """A fake cache behind get_redis(), and an output folder of our own."""
    fake = fakeredis.FakeRedis()
    monkeypatch.setattr("cache.redis_client.get_redis", lambda *a, **k: fake)
    monkeypatch.setenv("MOVIEREC_OUTPUT", str(tmp_path / "out"))
    get_settings.cache_clear()
    yield fake
    get_settings.cache_clear()


def test_publish_status_and_rollback(r, tmp_path, capsys):
    models = tmp_path / "out" / "models"
    fake_version(models, V1)
    assert main(["publish"]) == 0  # LATEST
    assert json.loads(capsys.readouterr().out)["version"] == V1
    fake_version(models, V2)
    assert main(["publish", "--version", V2]) == 0
    capsys.readouterr()

    assert main(["status"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["active"], status["previous"]) == (V2, V1)

    assert main(["rollback"]) == 0
    assert f"active version: {V1}" in capsys.readouterr().out
    assert versions.active_version(r) == V1


def test_rollback_without_a_previous_version_is_a_one_line_error(r, tmp_path, capsys):
    fake_version(tmp_path / "out" / "models", V1)
    main(["publish"])
    assert main(["rollback"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("movierec: error:") and "no previous version" in err
    assert "Traceback" not in err


def test_publish_without_any_version_is_a_one_line_error(r, capsys):
    assert main(["publish"]) == 1
    assert "run `movierec pipeline` first" in capsys.readouterr().err


def test_bootstrap_publishes_the_newest_folder_then_does_nothing(r, tmp_path, capsys):
    fake_version(tmp_path / "out" / "models", V1)
    assert main(["bootstrap"]) == 0
    assert versions.active_version(r) == V1
    assert main(["bootstrap"]) == 0
    assert f"serving cached version {V1}" in capsys.readouterr().out


def test_bootstrap_trains_when_there_is_nothing_to_publish(r, small_data, small_shape, monkeypatch):
    monkeypatch.setenv("MOVIEREC_DATA", str(small_data))
    get_settings.cache_clear()
    assert main(["bootstrap"]) == 0
    active = versions.active_version(r)
    assert active and r.hlen(f"movierec:v:{active}:users") == small_shape.users


def test_bootstrap_without_data_says_how_to_fix_it(r, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MOVIEREC_DATA", str(tmp_path / "missing"))
    get_settings.cache_clear()
    assert main(["bootstrap"]) == 1
    assert "set MOVIEREC_DATA" in capsys.readouterr().err


def test_publish_of_a_truncated_version_is_one_clear_line(r, tmp_path, capsys):
    folder = fake_version(tmp_path / "out" / "models", V1)
    data = folder.recommendations.read_bytes()
    folder.recommendations.write_bytes(data[:100])
    assert main(["publish"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("movierec: error: ") and "cannot be read" in err
    assert "Traceback" not in err and versions.active_version(r) is None
