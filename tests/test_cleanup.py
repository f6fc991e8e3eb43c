"""Pruning the version store: kept, protected, complete and abandoned versions."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipeline.artifacts import VersionFolder
from store.local import LocalBackend
from store.versions import VersionStore

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def committed(root: Path, name: str, complete: bool = True) -> None:
    folder = VersionFolder(root / name)
    folder.path.mkdir(parents=True)
    folder.metadata.write_text("{}")
    for user_file in VersionFolder.USER_FILES:
        (folder.path / user_file).write_text("")
    store = VersionStore(LocalBackend(root), None)
    store.commit(folder) if complete else store.commit_trained(folder)


def test_keeps_the_newest_and_the_protected(tmp_path):
    for name in ("20260101T000000Z-a", "20260201T000000Z-b", "20260301T000000Z-c"):
        committed(tmp_path, name)
    committed(tmp_path, "20260401T000000Z-d")
    (tmp_path / ".20260501T000000Z-e.tmp").mkdir()
    store = VersionStore(LocalBackend(tmp_path), None)
    removed = store.prune({"20260101T000000Z-a"}, keep=2, abandon_after=3600, now=NOW)
    assert removed == ["20260201T000000Z-b"]
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [
        ".20260501T000000Z-e.tmp",
        "20260101T000000Z-a",
        "20260301T000000Z-c",
        "20260401T000000Z-d",
        "LATEST",
    ]


def test_an_unfinished_version_goes_only_once_nothing_writes_to_it(tmp_path):
    committed(tmp_path, "20260101T000000Z-a")
    committed(tmp_path, "20260102T000000Z-b", complete=False)
    store = VersionStore(LocalBackend(tmp_path), None)
    written = datetime.now(UTC)
    assert store.prune(set(), keep=3, abandon_after=3600, now=written) == []
    later = written + timedelta(seconds=3601)
    assert store.prune(set(), keep=3, abandon_after=3600, now=later) == ["20260102T000000Z-b"]
    assert [v.version for v in store.versions()] == ["20260101T000000Z-a"]


def test_nothing_to_prune(tmp_path):
    committed(tmp_path, "20260101T000000Z-a")
    assert VersionStore(LocalBackend(tmp_path), None).prune(set(), 3, 3600, NOW) == []
    missing = VersionStore(LocalBackend(tmp_path / "missing"), None)
    assert missing.prune(set(), 1, 3600, NOW) == []
