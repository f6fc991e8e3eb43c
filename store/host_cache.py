"""This host's copies of version files read from a remote store: verified, shared, bounded.

Files sit at `<cache>/<version>/<name>`, the same layout as a version folder, so readers get an
ordinary `VersionFolder`. Versions never change once committed, so a cached file never goes
stale. A file lock per file makes the worker processes of one host download each file once;
the others wait and read the copy. Every use touches the file's mtime, and after each download
the least recently used files go until the cache fits its bound. Files used in the last minute
stay even over it: another process may be about to open them.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from pipeline.artifacts import VersionFolder
from pipeline.atomic import atomic_path
from store.manifest import CorruptDownload, FileEntry

IN_USE_SECONDS = 60.0


class Copy(NamedTuple):
    path: Path
    downloaded: bool  # False: this host had it


class CachedFile(NamedTuple):
    path: Path
    size: int
    used: float  # Unix time of its last use (mtime)


class HostCache:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def folder(self, version: str) -> Path:
        return self.root / version

    def get(
        self, version: str, name: str, entry: FileEntry, download: Callable[[], Iterator[bytes]]
    ) -> Copy:
        """The verified local copy of one file, downloaded unless this host has it."""
        target = self.folder(version) / name
        if _touch(target):
            return Copy(target, downloaded=False)
        with _file_lock(target):
            if _touch(target):  # another process fetched it meanwhile
                return Copy(target, downloaded=False)
            _download(target, entry, download())
        return Copy(target, downloaded=True)

    def marker(self, version: str, name: str) -> bytes | None:
        """A commit marker read from the store before: markers never change once written, so
        a host that has one (and the files) works on while the store is unreachable."""
        try:
            return (self.folder(version) / name).read_bytes()
        except FileNotFoundError:
            return None

    def keep_marker(self, version: str, name: str, data: bytes) -> None:
        with atomic_path(self.folder(version) / name) as tmp:
            tmp.write_bytes(data)

    def evict(self, keep: Iterable[Path] = ()) -> list[Path]:
        """Least recently used files first, until the cache fits `max_bytes`."""
        kept, files = set(keep), self._files()
        total = sum(cached.size for cached in files)
        removed, now = [], time.time()
        for cached in sorted(files, key=lambda cached: cached.used):
            if total <= self.max_bytes:
                break
            if cached.path in kept or now - cached.used < IN_USE_SECONDS:
                continue
            if _used_since(cached):
                continue
            cached.path.unlink(missing_ok=True)
            total -= cached.size
            removed.append(cached.path)
        return removed

    def drop(self, keep_versions: set[str], idle_seconds: float) -> list[str]:
        """Forget the copies of other versions, and unfinished writes (`.<version>.tmp`), that
        nothing touched for `idle_seconds`."""
        now = time.time()
        gone = [
            folder
            for folder in self._folders(with_staging=True)
            if folder.name not in keep_versions
            and now - folder.stat().st_mtime > idle_seconds
            and (folder.name.startswith(".") or _from_store(folder))
        ]
        for folder in gone:
            shutil.rmtree(folder, ignore_errors=True)
        return [folder.name for folder in gone]

    def _folders(self, with_staging: bool = False) -> list[Path]:
        if not self.root.is_dir():
            return []
        skip = ("_",) if with_staging else (".", "_")
        return [p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(skip)]

    def _files(self) -> list[CachedFile]:
        """Files of versions read from or committed to the store, markers aside: a folder
        without a marker (an earlier release's version, a run not yet committed) is no copy."""
        markers = set(VersionFolder.MARKERS.values())
        return [
            CachedFile(path, stat.st_size, stat.st_mtime)
            for folder in self._folders()
            if _from_store(folder)
            for path in folder.iterdir()
            if path.is_file()
            and not path.name.startswith(".")
            and path.name not in markers
            and (stat := path.stat())
        ]


def _used_since(cached: CachedFile) -> bool:
    """Touched (or gone) since the cache was listed: another process is reading it."""
    try:
        return cached.path.stat().st_mtime != cached.used
    except FileNotFoundError:
        return True


def _from_store(folder: Path) -> bool:
    return any((folder / marker).is_file() for marker in VersionFolder.MARKERS.values())


def _touch(path: Path) -> bool:
    """Mark a use of the file; False when there is no such file."""
    try:
        os.utime(path)
    except FileNotFoundError:
        return False
    return True


@contextmanager
def _file_lock(target: Path) -> Iterator[None]:
    """An exclusive lock on `.<name>.lock` beside the file, held while it is downloaded."""
    lock = target.with_name(f".{target.name}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield  # closing the file releases the lock


def _download(target: Path, entry: FileEntry, chunks: Iterator[bytes]) -> None:
    """Streams to a temporary file beside the target, renamed only if size and sha256 match."""
    digest, size = hashlib.sha256(), 0
    with atomic_path(target) as tmp:
        with tmp.open("wb") as handle:
            for block in chunks:
                digest.update(block)
                size += len(block)
                handle.write(block)
        if size != entry.size or digest.hexdigest() != entry.sha256:
            raise CorruptDownload(
                f"{target.parent.name}/{target.name}: got {size} bytes with sha256 "
                f"{digest.hexdigest()[:12]}, the manifest says {entry.size} and "
                f"{entry.sha256[:12]}; discarded"
            )
