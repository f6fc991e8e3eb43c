"""The manifest sealed into each commit marker: every file of the step with its sha256 and size.

A host verifies each download against it, so a file damaged in transit or in the bucket is
never used; the marker is written last, so a version without it was never finished.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from store.objects import StoreUnavailable

HASH_BLOCK = 1 << 20


class CorruptDownload(StoreUnavailable):
    """A downloaded file does not match its manifest entry; it is discarded, never used."""


@dataclass(frozen=True)
class FileEntry:
    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    version: str
    stage: str
    files: dict[str, FileEntry]
    written_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def to_bytes(self) -> bytes:
        files = {name: vars(entry) for name, entry in sorted(self.files.items())}
        body = {"version": self.version, "stage": self.stage, "written_at": self.written_at}
        return json.dumps(body | {"files": files}, indent=2).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        body = json.loads(data)
        files = {name: FileEntry(**entry) for name, entry in body["files"].items()}
        return cls(body["version"], body["stage"], files, body["written_at"])

    def extended(self, stage: str, files: dict[str, FileEntry]) -> Manifest:
        return Manifest(self.version, stage, self.files | files)


def entry_of(path: Path) -> FileEntry:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(HASH_BLOCK):
            digest.update(block)
    return FileEntry(digest.hexdigest(), path.stat().st_size)


def entries_of(paths: list[Path]) -> dict[str, FileEntry]:
    return {path.name: entry_of(path) for path in paths}
