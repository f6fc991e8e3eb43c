"""Versions in the store: committed in two sealed steps, fetched as local folders, pruned.

    <root>/<version>/<files>             the version folder's files (pipeline.artifacts)
    <root>/<version>/user_parts/<part>   chunk tasks' outputs, until publish merges them
    <root>/<version>/trained.json        marker: the manifest of what chunk tasks read
    <root>/<version>/complete.json       marker: the same plus the merged user files
    <root>/LATEST                        the newest version published: what a new service publishes
    <root>/_reports/<name>               offline evaluation reports, for every web host

Object stores cannot rename a folder, so a version exists for readers only once its marker is
there, and markers are written last. Only a complete version is served, published, rolled back
to or reused by the next snapshot. Nothing outside this package names a stored file's place:
Redis, the database and task messages name versions, and `fetch` turns one into local files.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from pipeline.artifacts import (
    COMPLETE,
    REPORTS,
    TRAINED,
    VERSION_ID,
    ModelsFolder,
    OutputFolder,
    VersionFolder,
)
from store.host_cache import HostCache
from store.manifest import Manifest, entries_of
from store.objects import Backend, StoreMissing
from store.settings import StoreSettings

LATEST = ModelsFolder.LATEST


class VersionNotReady(StoreMissing):
    """The version has no marker for the step asked for: unfinished, abandoned or unknown."""


class StoredVersion(NamedTuple):
    version: str
    stage: str | None  # COMPLETE, TRAINED, or None while (or if never) written
    modified: datetime  # its newest object's time


@dataclass(frozen=True)
class Report:
    data: bytes
    modified: datetime


class VersionStore:
    def __init__(self, backend: Backend, cache: HostCache | None) -> None:
        """`cache`: this host's copies, for a store not on its disk (None for a folder)."""
        self.backend = backend
        self.cache = cache
        self._manifests: dict[tuple[str, str], Manifest] = {}  # markers never change

    @property
    def url(self) -> str:
        return self.backend.url

    # Writing

    def commit_trained(self, folder: VersionFolder) -> Manifest:
        """Everything but the user files, then the "trained" marker."""
        files = [p for p in folder.artifacts() if p.name not in VersionFolder.USER_FILES]
        return self._seal(folder, Manifest(folder.version, TRAINED, entries_of(files)), files)

    def commit_complete(self, folder: VersionFolder) -> Manifest:
        """The merged user files on top of the trained step, then the "complete" marker."""
        files = [folder.path / name for name in VersionFolder.USER_FILES]
        trained = self.manifest(folder.version, TRAINED)
        return self._seal(folder, trained.extended(COMPLETE, entries_of(files)), files)

    def commit(self, folder: VersionFolder) -> Manifest:
        """A version made whole in one run (`movierec pipeline`): both steps, then LATEST."""
        self.commit_trained(folder)
        manifest = self.commit_complete(folder)
        self.mark_latest(folder.version)
        return manifest

    def mark_latest(self, version: str) -> None:
        """LATEST names the newest version published (or made whole offline): what a service
        with an empty cache publishes first. Only a complete version can be named."""
        self.manifest(version, COMPLETE)
        self.backend.put_bytes(LATEST, f"{version}\n".encode())

    def _seal(self, folder: VersionFolder, manifest: Manifest, files: list[Path]) -> Manifest:
        for path in files:
            self.backend.put_file(_key(folder.version, path.name), path)
        marker, data = folder.marker(manifest.stage).name, manifest.to_bytes()
        self.backend.put_bytes(_key(folder.version, marker), data)
        if self.cache:
            self.cache.keep_marker(folder.version, marker, data)
        self._manifests[(folder.version, manifest.stage)] = manifest
        return manifest

    def put_part(self, version: str, path: Path) -> None:
        self.backend.put_file(_key(version, VersionFolder.PARTS, path.name), path)

    def part_keys(self, version: str) -> list[str]:
        return [item.key for item in self.backend.list(_key(version, VersionFolder.PARTS))]

    def fetch_parts(self, version: str, into: Path) -> Path:
        """A folder with every chunk part of the version: the store's own, or copies in `into`."""
        local = self.backend.local_path(_key(version, VersionFolder.PARTS))
        if local is not None:
            return local
        into.mkdir(parents=True, exist_ok=True)
        for key in self.part_keys(version):
            with (into / key.rsplit("/", 1)[1]).open("wb") as handle:
                for block in self.backend.chunks(key):
                    handle.write(block)
        return into

    def drop_parts(self, version: str) -> None:
        self.backend.delete(self.part_keys(version))

    def put_report(self, path: Path) -> None:
        self.backend.put_file(_key(REPORTS, path.name), path)

    # Reading

    def manifest(self, version: str, stage: str) -> Manifest:
        """The marker's manifest; VersionNotReady when the step was never sealed."""
        found = self._manifests.get((version, stage))
        if found is None:
            marker = VersionFolder(Path(version)).marker(stage).name
            data = self.cache.marker(version, marker) if self.cache else None
            if data is None:
                data = self._read_marker(version, marker, stage)
            found = self._manifests[(version, stage)] = Manifest.from_bytes(data)
        return found

    def _read_marker(self, version: str, marker: str, stage: str) -> bytes:
        try:
            data = self.backend.read_bytes(_key(version, marker))
        except StoreMissing:
            if not self._adopt(version):
                raise VersionNotReady(
                    f"version {version} is not {stage} in the store {self.url}"
                ) from None
            data = self.backend.read_bytes(_key(version, marker))
        if self.cache:
            self.cache.keep_marker(version, marker, data)
        return data

    def _adopt(self, version: str) -> bool:
        """A whole version folder written before the store had markers (an earlier release's
        `output/models/<version>/`) is sealed as it is, so an upgraded service keeps serving,
        retraining from and placing movies with it. Only in a folder store, and only a folder
        with neither marker and every required file: never one a retrain is still writing."""
        path = self.backend.local_path(version)
        if path is None or not VERSION_ID.fullmatch(version):
            return False
        folder = VersionFolder(path)
        markers = [folder.marker(stage) for stage in VersionFolder.MARKERS]
        if not path.is_dir() or folder.missing() or any(m.exists() for m in markers):
            return False
        self.commit_trained(folder)
        self.commit_complete(folder)
        return True

    def fetch(
        self, version: str, names: Iterable[str] | None = None, stage: str = COMPLETE
    ) -> VersionFolder:
        """The version as a local folder holding at least `names` (default: all its files) of
        those the step's manifest lists, each verified when it was downloaded."""
        manifest = self.manifest(version, stage)
        in_place = self.backend.local_path(version)
        if in_place is not None or self.cache is None:  # a folder store: read in place
            return VersionFolder(in_place or Path(version))
        wanted = manifest.files.keys() if names is None else set(names) & manifest.files.keys()
        copies = [
            self.cache.get(version, name, manifest.files[name], self._chunks(version, name))
            for name in sorted(wanted)
        ]
        if any(copy.downloaded for copy in copies):  # the bound, once per fetch
            self.cache.evict(keep={copy.path for copy in copies})
        return VersionFolder(self.cache.folder(version))

    def _chunks(self, version: str, name: str) -> Callable[[], Iterator[bytes]]:
        return lambda: self.backend.chunks(_key(version, name))

    def version_ids(self) -> list[str]:
        """Every version id in the store, oldest first (ids begin with their UTC time)."""
        return sorted(name for name in self.backend.top_level() if VERSION_ID.fullmatch(name))

    def versions(self) -> list[StoredVersion]:
        """Every version with its step and last write: one listing per version."""
        return [self._describe(version) for version in self.version_ids()]

    def _describe(self, version: str) -> StoredVersion:
        objects = self.backend.list(version)
        names = {item.key.rsplit("/", 1)[-1] for item in objects}
        markers = VersionFolder.MARKERS
        stage = next((s for s in (COMPLETE, TRAINED) if markers[s] in names), None)
        newest = max((item.modified for item in objects), default=datetime.now(UTC))
        return StoredVersion(version, stage, newest)

    def latest(self) -> str | None:
        """The version LATEST names, if it is complete in the store."""
        try:
            version = self.backend.read_bytes(LATEST).decode().strip()
            self.manifest(version, COMPLETE)
        except (StoreMissing, UnicodeDecodeError):
            return None
        return version

    def read_report(self, name: str) -> Report | None:
        key = _key(REPORTS, name)
        try:
            listed = self.backend.list(REPORTS)
            data = self.backend.read_bytes(key)
        except StoreMissing:
            return None
        modified = next((item.modified for item in listed if item.key == key), None)
        return Report(data, modified or datetime.now(UTC))

    def prune_host_cache(self, stored: set[str], idle_seconds: float) -> list[str]:
        """This host's copies of versions gone from the store (and unfinished local writes),
        once untouched for `idle_seconds`: a version written here now is not yet stored."""
        return [] if self.cache is None else self.cache.drop(stored, idle_seconds)

    def check(self) -> int:
        """One cheap call that proves the store answers; returns how many entries its root has."""
        return len(self.backend.top_level())

    # Pruning

    def prune(
        self, protected: set[str], keep: int, abandon_after: float, now: datetime
    ) -> list[str]:
        """Complete versions beyond the newest `keep` (except the protected ones) go, and so do
        versions never sealed complete once nothing has written to them for `abandon_after`
        seconds (longer than any retrain may run): one still being written is never touched."""
        stored = self.versions()
        complete = [v for v in stored if v.stage == COMPLETE]
        doomed = {v.version for v in complete[: max(0, len(complete) - keep)]}
        doomed |= {
            v.version
            for v in stored
            if v.stage != COMPLETE and (now - v.modified).total_seconds() > abandon_after
        }
        doomed -= protected
        markers = set(VersionFolder.MARKERS.values())
        for version in sorted(doomed):
            keys = [item.key for item in self.backend.list(version)]
            sealing = [key for key in keys if key.rsplit("/", 1)[-1] in markers]
            self.backend.delete(sealing)  # first: a prune cut short leaves no "complete" husk
            self.backend.delete([key for key in keys if key not in sealing])
            self._manifests = {k: m for k, m in self._manifests.items() if k[0] != version}
        return sorted(doomed)


def _key(*parts: str) -> str:
    return "/".join(parts)


_opened: dict[StoreSettings, VersionStore] = {}
_opening = threading.Lock()


def open_store(settings: StoreSettings) -> VersionStore:
    """One store per process and setting; its S3 client is made on first use."""
    with _opening:
        if settings not in _opened:
            _opened[settings] = VersionStore(_backend(settings), _cache(settings))
        return _opened[settings]


def store_for_output(out_dir: Path) -> VersionStore:
    """The store for the offline commands' output folder (`--out`, else MOVIEREC_OUTPUT)."""
    return open_store(StoreSettings.from_env(OutputFolder(out_dir).models.path))


def _backend(settings: StoreSettings) -> Backend:
    if settings.is_remote:
        from store.s3 import S3Backend

        return S3Backend(settings)
    from store.local import LocalBackend

    return LocalBackend(Path(settings.url))


def _cache(settings: StoreSettings) -> HostCache | None:
    return HostCache(settings.cache_dir, settings.cache_bytes) if settings.is_remote else None
