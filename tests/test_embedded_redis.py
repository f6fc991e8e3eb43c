"""The embedded redis-server's start: a server that cannot come up fails early with its log, and
no message carries its password."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from service.embedded_redis import redis_password, start_redis
from service.errors import ServiceError
from service.urls import without_password
from tests.serving_helpers import redis_server


@pytest.mark.integration
def test_a_server_that_cannot_start_fails_early_with_its_log_and_no_password(tmp_path):
    with redis_server(tmp_path / "first") as url:
        port = urlsplit(url).port
        with pytest.raises(ServiceError, match="Address already in use") as failure:
            start_redis(tmp_path / "second", port)
    message = str(failure.value)
    assert f"redis-server did not come up at redis://:***@127.0.0.1:{port}/0" in message
    assert redis_password(tmp_path / "second") not in message


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s%40cret@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        (
            "postgresql://postgres:pw@127.0.0.1:5432/postgres",
            "postgresql://postgres:***@127.0.0.1:5432/postgres",
        ),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://user@127.0.0.1:6379/0", "redis://user@127.0.0.1:6379/0"),
    ],
)
def test_urls_are_shown_without_their_password(url, shown):
    assert without_password(url) == shown
