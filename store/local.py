"""A store in a folder: the embedded default (`$MOVIEREC_OUTPUT/models`), or a mounted disk.

Objects are files, written under a temporary name and renamed, so a reader sees whole files.
Files are read in place: a store on this host's disk needs no cache.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from pipeline.atomic import atomic_path
from store.objects import StoredObject, count_bytes, guarded

CHUNK = 1 << 20


class LocalBackend:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = str(root)

    def _path(self, key: str) -> Path:
        return self.root / key

    def put_file(self, key: str, path: Path) -> None:
        target = self._path(key)
        with guarded("put"):
            if target.exists() and os.path.samefile(target, path):
                return  # the pipeline wrote it in place: this is the store's own folder
            with atomic_path(target) as tmp:
                shutil.copyfile(path, tmp)
        count_bytes("up", target.stat().st_size)

    def put_bytes(self, key: str, data: bytes) -> None:
        with guarded("put"), atomic_path(self._path(key)) as tmp:
            tmp.write_bytes(data)
        count_bytes("up", len(data))

    def read_bytes(self, key: str) -> bytes:
        with guarded("get"):
            data = self._path(key).read_bytes()
        count_bytes("down", len(data))
        return data

    def chunks(self, key: str) -> Iterator[bytes]:
        with guarded("get"), self._path(key).open("rb") as handle:
            while block := handle.read(CHUNK):
                count_bytes("down", len(block))
                yield block

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def list(self, prefix: str) -> list[StoredObject]:
        with guarded("list"):
            folder = self._path(prefix)
            files = sorted(folder.rglob("*")) if folder.is_dir() else []
            return [
                StoredObject(str(path.relative_to(self.root)), stat.st_size, _utc(stat.st_mtime))
                for path in files
                if path.is_file() and not path.name.startswith(".") and (stat := path.stat())
            ]

    def top_level(self) -> list[str]:
        with guarded("list"):
            found = self.root.iterdir() if self.root.is_dir() else ()
            return sorted(p.name for p in found if p.is_dir() and not p.name.startswith("."))

    def delete(self, keys: list[str]) -> None:
        with guarded("delete"):
            for key in keys:
                self._path(key).unlink(missing_ok=True)
            for folder in sorted({self._path(key).parent for key in keys}, reverse=True):
                _remove_empty(folder, self.root)


def _remove_empty(folder: Path, root: Path) -> None:
    while folder != root and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
