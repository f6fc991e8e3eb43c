"""A store in an S3-compatible bucket (AWS S3, Ceph, SeaweedFS, Garage, R2), through obstore.

obstore is a thin binding of the Rust `object_store` crate: one small wheel with no botocore,
per-call connect and read timeouts, bounded retries with backoff, and the standard AWS
environment variables read natively. The client is made lazily in each process (Celery forks
its workers, and a client's connection pool must not cross a fork), and nothing here is
imported until a store is opened, so the web tier starts without it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import timedelta
from pathlib import Path
from typing import Any

from store import objects
from store.objects import StoredObject, count_bytes
from store.settings import S3_SCHEME, StoreSettings

DOWNLOAD_CHUNK = 8 << 20


class S3Backend:
    def __init__(self, settings: StoreSettings) -> None:
        self.url = settings.url
        self.settings = settings
        self._client: tuple[int, Any] | None = None  # (pid, store): remade after a fork

    @property
    def client(self) -> Any:
        if self._client is None or self._client[0] != os.getpid():
            self._client = (os.getpid(), self._connect())
        return self._client[1]

    def _connect(self) -> Any:
        from obstore.store import S3Store

        settings = self.settings
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        client_options = {
            "connect_timeout": timedelta(seconds=settings.connect_timeout),
            "read_timeout": timedelta(seconds=settings.read_timeout),
            "timeout": timedelta(seconds=settings.transfer_timeout),
            "allow_http": bool(endpoint and endpoint.startswith("http://")),
        }
        retry_config = {
            "max_retries": settings.retries,
            "retry_timeout": timedelta(seconds=settings.retry_window),
            "backoff": {
                "init_backoff": timedelta(milliseconds=100),
                "max_backoff": timedelta(seconds=1),
            },
        }
        bucket, _, prefix = settings.url[len(S3_SCHEME) :].partition("/")
        return S3Store(
            bucket,
            prefix=prefix.strip("/") or None,
            client_options=client_options,
            retry_config=retry_config,
            # path-style requests: what self-hosted servers (SeaweedFS, Garage, moto) expect
            virtual_hosted_style_request=False,
        )

    def put_file(self, key: str, path: Path) -> None:
        import obstore

        with guarded("put"):
            obstore.put(self.client, key, path)
        count_bytes("up", path.stat().st_size)

    def put_bytes(self, key: str, data: bytes) -> None:
        import obstore

        with guarded("put"):
            obstore.put(self.client, key, data)
        count_bytes("up", len(data))

    def read_bytes(self, key: str) -> bytes:
        import obstore

        with guarded("get"):
            data = obstore.get(self.client, key).bytes().to_bytes()
        count_bytes("down", len(data))
        return data

    def chunks(self, key: str) -> Iterator[bytes]:
        import obstore

        with guarded("get"):
            for block in obstore.get(self.client, key).stream(DOWNLOAD_CHUNK):
                data = bytes(block)
                count_bytes("down", len(data))
                yield data

    def local_path(self, key: str) -> Path | None:
        return None

    def list(self, prefix: str) -> list[StoredObject]:
        import obstore

        with guarded("list"):
            return [
                StoredObject(meta["path"], meta["size"], meta["last_modified"])
                for batch in obstore.list(self.client, prefix.rstrip("/") + "/")
                for meta in batch
            ]

    def top_level(self) -> list[str]:
        import obstore

        with guarded("list"):
            listed = obstore.list_with_delimiter(self.client, None)
        return sorted(prefix.rstrip("/") for prefix in listed["common_prefixes"])

    def delete(self, keys: list[str]) -> None:
        import obstore

        if keys:
            with guarded("delete"):
                obstore.delete(self.client, keys)


def guarded(operation: str) -> AbstractContextManager[None]:
    from obstore.exceptions import BaseError

    return objects.guarded(operation, (BaseError, OSError))
