"""Server URLs as they may be shown: printed by `movierec up`, or in an error that is logged."""

from __future__ import annotations

from urllib.parse import urlsplit


def without_password(url: str) -> str:
    """`url` with its password, if it has one, written as ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    credentials, _, host = parts.netloc.rpartition("@")
    user = credentials.partition(":")[0]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()
