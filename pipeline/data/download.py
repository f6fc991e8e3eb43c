"""Fetch a MovieLens release from GroupLens, verified and unpacked, so a run never starts on a
truncated or tampered archive.

Every step works on a temporary name inside the destination folder and only the last one, a
directory rename, makes the data visible: an interrupted download leaves no half-unpacked set
that a later run would mistake for a complete one.

The network, zip and progress-bar modules are imported by the steps that use them: the command
line reads this module's names (DATASETS, BASE_URL) when it builds its parser, for every command.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import MovierecError

BASE_URL = "https://files.grouplens.org/datasets/movielens"

# md5 of each <name>.zip, as GroupLens publishes it in <name>.zip.md5 beside the archive. All five
# are pinned here (checked against several independent public copies of those .md5 files), so a
# download never trusts a checksum fetched from the same server as the archive it verifies.
DATASETS: dict[str, str] = {
    "ml-latest-small": "31a303aabbc519bd33d025e44d6c2570",
    "ml-25m": "6b51fb2759a8657d3bfcbfc42b592ada",
    "ml-32m": "d472be332d4daa821edc399621853b57",
    "ml-100k": "0e33842e24a9c977be4e0107933c0723",
    "ml-1m": "c4d9eecfca2ab87c1945afe126590906",
}

# Written last inside the unpacked folder: its presence is the proof that the copy is complete.
MARKER = ".movierec-download.json"
TIMEOUT_SECONDS = 60
CHUNK_BYTES = 1 << 20


class DownloadError(MovierecError):
    """A dataset could not be fetched or installed; the message is one line meant for a person."""


@dataclass(frozen=True)
class DownloadResult:
    path: Path
    fetched: bool  # False when a complete copy was already in place


def archive_url(name: str, base_url: str = BASE_URL) -> str:
    return f"{base_url.rstrip('/')}/{name}.zip"


def download_dataset(
    name: str, dest: str | Path, base_url: str = BASE_URL, timeout: float = TIMEOUT_SECONDS
) -> DownloadResult:
    """Make `dest/name` a complete, verified copy of the release; a no-op when it already is."""
    if name not in DATASETS:
        raise DownloadError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    dest = Path(dest)
    target = dest / name
    if is_complete(target):
        return DownloadResult(target, fetched=False)
    if target.exists() and not (target / MARKER).exists():
        raise DownloadError(
            f"{target} exists but was not made by a verified download; move it away or choose "
            "another --to"
        )
    dest.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".zip.part", dir=dest)
    os.close(fd)
    archive = Path(temp_name)
    try:
        actual = fetch(archive_url(name, base_url), archive, timeout)
        expected = DATASETS[name]
        if actual != expected:
            raise DownloadError(
                f"checksum mismatch for {name}.zip: expected md5 {expected}, got {actual} "
                "(the downloaded file was deleted)"
            )
        install(archive, target, expected)
    finally:
        archive.unlink(missing_ok=True)
    return DownloadResult(target, fetched=True)


def fetch(url: str, path: Path, timeout: float = TIMEOUT_SECONDS) -> str:
    """Stream `url` into `path` with a progress bar; return the md5 of what was written."""
    import http.client
    import urllib.error
    import urllib.request

    from tqdm import tqdm

    digest = hashlib.md5(usedforsecurity=False)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, path.open("wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            bar = tqdm(total=total, unit="B", unit_scale=True, desc=Path(url).name, disable=None)
            with bar:
                while chunk := response.read(CHUNK_BYTES):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"{url}: server answered HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise DownloadError(f"{url}: cannot reach the server ({exc.reason})") from None
    except TimeoutError:
        raise DownloadError(f"{url}: no answer within {timeout:g} s") from None
    except http.client.HTTPException as exc:
        raise DownloadError(f"{url}: transfer broken off ({exc!r})") from None
    except OSError as exc:
        raise DownloadError(f"{url}: download failed ({exc.strerror or exc})") from None
    return digest.hexdigest()


def install(archive: Path, target: Path, archive_md5: str) -> None:
    """Unpack `archive` as the folder `target`, replacing an incomplete earlier copy of ours."""
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        root = unpack(archive, staging, target.name)
        _write_marker(root, target.name, archive_md5)
        if target.exists():  # marked by us but incomplete (checked by the caller): replace it
            os.replace(target, staging / ".previous")
        os.replace(root, target)
    except OSError as exc:
        raise DownloadError(f"cannot install {target}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def unpack(archive: Path, staging: Path, name: str) -> Path:
    """Extract into `staging`, refusing any member that would land outside it; return the data root.

    GroupLens archives hold one top-level folder named after the release; that folder is the root.
    """
    import zipfile
    import zlib

    base = staging.resolve()
    try:
        with zipfile.ZipFile(archive) as bundle:
            for member in bundle.infolist():
                destination = (base / member.filename).resolve()
                if not destination.is_relative_to(base):
                    raise DownloadError(f"{name}.zip: unsafe member path {member.filename!r}")
            bundle.extractall(base)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError) as exc:
        raise DownloadError(f"{name}.zip is not a valid zip archive ({exc})") from None
    entries = list(base.iterdir())
    if len(entries) == 1 and entries[0].is_dir() and entries[0].name == name:
        return entries[0]
    root = base / f".{name}.root"
    root.mkdir()
    for entry in entries:
        entry.rename(root / entry.name)
    return root


def _write_marker(root: Path, name: str, archive_md5: str) -> None:
    files = {
        str(path.relative_to(root)): path.stat().st_size
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }
    record = {"dataset": name, "archive_md5": archive_md5, "files": files}
    (root / MARKER).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def is_complete(target: Path) -> bool:
    """True when every file recorded at install time is still there with its original size."""
    try:
        record = json.loads((target / MARKER).read_text(encoding="utf-8"))
        return all((target / rel).stat().st_size == size for rel, size in record["files"].items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False
