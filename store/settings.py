"""Where versions live and how long a store call may take, from the environment.

`MOVIEREC_MODELS` names the store: a folder (by default `$MOVIEREC_OUTPUT/models`) or
`s3://bucket/prefix` in any S3-compatible object store, reached with the standard AWS variables
(`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_DEFAULT_REGION`, `AWS_ENDPOINT_URL`). The
defaults bound a call to a store that stops answering, retries included, to about 3.5 s,
which keeps a web request that needs the store under 5 s; a transfer that keeps moving may
take up to MOVIEREC_STORE_TRANSFER_TIMEOUT (a worker downloading a large version).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pipeline.settings import N, SettingsError, env_number

S3_SCHEME = "s3://"
MODELS_VARIABLE = "MOVIEREC_MODELS"
DEFAULT_CONNECT_TIMEOUT = 1.0
DEFAULT_READ_TIMEOUT = 1.5  # a stall, not a whole download: it restarts at every read
DEFAULT_RETRIES = 2
DEFAULT_RETRY_WINDOW = 2.0  # no retry starts later than this after the first attempt
# A whole transfer, however steady: a version's ratings at 25M are ~190 MB. Stalls are caught
# by the read timeout long before.
DEFAULT_TRANSFER_TIMEOUT = 900.0
DEFAULT_CACHE_BYTES = 4 << 30


class StoreSettingsError(SettingsError):
    """A store variable holds a value the service cannot use."""


@dataclass(frozen=True)
class StoreSettings:
    url: str  # a folder path, or s3://bucket/prefix
    cache_dir: Path  # this host's copies of version files read from a remote store
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    retries: int = DEFAULT_RETRIES
    retry_window: float = DEFAULT_RETRY_WINDOW
    transfer_timeout: float = DEFAULT_TRANSFER_TIMEOUT
    cache_bytes: int = DEFAULT_CACHE_BYTES

    @property
    def is_remote(self) -> bool:
        return self.url.startswith(S3_SCHEME)

    @classmethod
    def from_env(cls, local_models: Path, env: Mapping[str, str] | None = None) -> StoreSettings:
        """`local_models`: `$MOVIEREC_OUTPUT/models`, the default store and the host's cache."""
        env = os.environ if env is None else env
        url = env.get(MODELS_VARIABLE) or str(local_models)
        if "://" in url and not url.startswith(S3_SCHEME):
            raise StoreSettingsError(
                f"{MODELS_VARIABLE}={url!r}: use a folder or s3://bucket/prefix"
            )
        if url.startswith(S3_SCHEME) and not url[len(S3_SCHEME) :].strip("/"):
            raise StoreSettingsError(f"{MODELS_VARIABLE}={url!r} names no bucket")

        def number(name: str, default: N, kind: Callable[[str], N], zero: bool = False) -> N:
            return env_number(env, name, default, kind, zero, StoreSettingsError)

        return cls(
            url=url if url.startswith(S3_SCHEME) else str(Path(url).resolve()),
            cache_dir=local_models,
            connect_timeout=number(
                "MOVIEREC_STORE_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT, float
            ),
            read_timeout=number("MOVIEREC_STORE_READ_TIMEOUT", DEFAULT_READ_TIMEOUT, float),
            retries=number("MOVIEREC_STORE_RETRIES", DEFAULT_RETRIES, int, zero=True),
            retry_window=number("MOVIEREC_STORE_RETRY_WINDOW", DEFAULT_RETRY_WINDOW, float),
            transfer_timeout=number(
                "MOVIEREC_STORE_TRANSFER_TIMEOUT", DEFAULT_TRANSFER_TIMEOUT, float
            ),
            cache_bytes=number("MOVIEREC_STORE_CACHE_BYTES", DEFAULT_CACHE_BYTES, int),
        )
