"""The version store on both backends: a folder and a real S3 server (moto)."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.artifacts import COMPLETE, TRAINED, VersionFolder
from store.host_cache import IN_USE_SECONDS, HostCache
from store.local import LocalBackend
from store.manifest import CorruptDownload, entry_of
from store.objects import StoreUnavailable
from store.settings import StoreSettings, StoreSettingsError
from store.versions import VersionNotReady, VersionStore, open_store
from tests.s3_server import S3Server

VERSION = "20260101T000000000000Z-abcd1234"
CATALOG_BYTES = b"movies " * 1000


def written(root: Path, version: str = VERSION) -> VersionFolder:
    """A version folder as a retrain leaves it before its users are merged."""
    folder = VersionFolder(root / version)
    folder.path.mkdir(parents=True)
    folder.metadata.write_text(f'{{"version": "{version}"}}')
    folder.movies.write_bytes(CATALOG_BYTES)
    folder.ratings.write_bytes(b"ratings " * 5000)
    return folder


def with_users(folder: VersionFolder) -> VersionFolder:
    folder.favorites.write_bytes(b"favorites")
    folder.recommendations.write_bytes(b"recommendations")
    return folder


@pytest.fixture(params=["folder", "s3"])
def store_settings(request, tmp_path, monkeypatch) -> StoreSettings:
    """The same contract on both kinds of store; the S3 one on its own bucket."""
    cache = tmp_path / "host" / "models"
    if request.param == "folder":
        return StoreSettings(url=str(tmp_path / "store"), cache_dir=cache)
    server: S3Server = request.getfixturevalue("s3_server")
    for name, value in server.env.items():
        monkeypatch.setenv(name, value)
    return StoreSettings(url=server.new_bucket(), cache_dir=cache)


@pytest.fixture
def store(store_settings) -> VersionStore:
    return open_store(store_settings)


def test_a_version_is_visible_only_once_its_step_is_sealed(store, tmp_path):
    folder = written(tmp_path / "trainer")
    with pytest.raises(VersionNotReady):
        store.fetch(VERSION, stage=TRAINED)
    store.commit_trained(folder)
    fetched = store.fetch(VERSION, VersionFolder.CATALOG, TRAINED)
    assert fetched.movies.read_bytes() == CATALOG_BYTES
    with pytest.raises(VersionNotReady):
        store.fetch(VERSION, stage=COMPLETE)
    assert store.latest() is None
    assert [(v.version, v.stage) for v in store.versions()] == [(VERSION, TRAINED)]
    store.commit_complete(with_users(folder))
    assert store.fetch(VERSION, VersionFolder.USER_FILES).favorites.read_bytes() == b"favorites"
    assert store.latest() is None  # not published yet
    store.mark_latest(VERSION)
    assert store.latest() == VERSION


def test_the_complete_manifest_lists_every_file_with_its_checksum(store, tmp_path):
    folder = with_users(written(tmp_path / "trainer"))
    manifest = store.commit(folder)
    assert set(manifest.files) == {p.name for p in folder.artifacts()}
    assert manifest.files["movies.parquet"] == entry_of(folder.movies)
    assert set(store.manifest(VERSION, TRAINED).files) == set(manifest.files) - set(
        VersionFolder.USER_FILES
    )


def test_chunk_parts_go_through_the_store_and_are_dropped_after_merging(store, tmp_path):
    store.commit_trained(written(tmp_path / "trainer"))
    for name in ("favorites-1-5.parquet", "favorites-6-9.parquet"):
        part = tmp_path / "chunk" / name
        part.parent.mkdir(exist_ok=True)
        part.write_bytes(name.encode())
        store.put_part(VERSION, part)
    parts = store.fetch_parts(VERSION, tmp_path / "merge")
    assert sorted(p.read_bytes() for p in parts.iterdir()) == [
        b"favorites-1-5.parquet",
        b"favorites-6-9.parquet",
    ]
    store.drop_parts(VERSION)
    assert store.part_keys(VERSION) == []


def test_reports_are_shared_through_the_store(store, tmp_path):
    assert store.read_report("evaluation.json") is None
    report = tmp_path / "evaluation.json"
    report.write_text('{"results": {}}')
    store.put_report(report)
    stored = store.read_report("evaluation.json")
    assert stored is not None and stored.data == b'{"results": {}}'
    assert [v.version for v in store.versions()] == []  # reports are no version


def test_prune_keeps_what_is_protected_or_still_being_written(store, tmp_path):
    old, kept, unfinished = (f"2026010{d}T000000000000Z-abcd1234" for d in (1, 2, 3))
    for version in (old, kept):
        store.commit(with_users(written(tmp_path / "trainer", version)))
    store.commit_trained(written(tmp_path / "trainer", unfinished))
    now = datetime.now(UTC)
    assert store.prune({old}, keep=1, abandon_after=600, now=now) == []
    assert store.prune(set(), keep=1, abandon_after=600, now=now) == [old]
    later = now + timedelta(seconds=601)
    assert store.prune(set(), keep=1, abandon_after=600, now=later) == [unfinished]
    assert [v.version for v in store.versions()] == [kept]


def test_a_remote_version_is_downloaded_once_per_host_and_verified(s3_store, tmp_path):
    store, settings = s3_store
    store.commit_trained(written(tmp_path / "trainer"))
    other_process = VersionStore(store.backend, HostCache(settings.cache_dir, 1 << 30))
    fetched = other_process.fetch(VERSION, VersionFolder.CATALOG, TRAINED)
    assert fetched.path == settings.cache_dir / VERSION
    assert sorted(p.name for p in fetched.path.iterdir() if not p.name.startswith(".")) == [
        "metadata.json",
        "movies.parquet",
        "trained.json",
    ]
    downloads: list[str] = []
    counting = store.backend.chunks
    store.backend.chunks = lambda key: downloads.append(key) or counting(key)
    again = VersionStore(store.backend, HostCache(settings.cache_dir, 1 << 30))
    assert again.fetch(VERSION, VersionFolder.CATALOG, TRAINED).movies.read_bytes() == CATALOG_BYTES
    assert downloads == []


def test_concurrent_fetches_on_one_host_download_each_file_once(s3_store, tmp_path):
    store, settings = s3_store
    store.commit_trained(written(tmp_path / "trainer"))
    downloads: list[str] = []
    counting = store.backend.chunks

    def slow_chunks(key: str):
        downloads.append(key)
        time.sleep(0.2)  # long enough for the other fetches to reach the lock
        return counting(key)

    store.backend.chunks = slow_chunks
    processes = [VersionStore(store.backend, HostCache(settings.cache_dir, 1 << 30)) for _ in "ab"]
    threads = [
        threading.Thread(target=p.fetch, args=(VERSION, ("movies.parquet",), TRAINED))
        for p in processes
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert downloads.count(f"{VERSION}/movies.parquet") == 1


def test_a_damaged_object_is_refused_and_never_cached(s3_store, tmp_path):
    store, _ = s3_store
    store.commit_trained(written(tmp_path / "trainer"))
    store.backend.put_bytes(f"{VERSION}/movies.parquet", b"tampered")
    reader = VersionStore(store.backend, HostCache(tmp_path / "other-host", 1 << 30))
    with pytest.raises(CorruptDownload, match=r"movies\.parquet"):
        reader.fetch(VERSION, ("movies.parquet",), TRAINED)
    assert not (tmp_path / "other-host" / VERSION / "movies.parquet").exists()


def test_a_host_with_the_files_works_on_while_the_store_is_frozen(s3_server, s3_store, tmp_path):
    store, settings = s3_store
    store.commit_trained(written(tmp_path / "trainer"))
    store.fetch(VERSION, VersionFolder.CATALOG, TRAINED)
    restarted = VersionStore(store.backend, HostCache(settings.cache_dir, 1 << 30))
    with s3_server.frozen():
        folder = restarted.fetch(VERSION, VersionFolder.CATALOG, TRAINED)
    assert folder.movies.read_bytes() == CATALOG_BYTES


def test_a_frozen_or_closed_store_fails_within_its_deadline(
    s3_server, s3_store, tmp_path, monkeypatch
):
    """The defaults keep a web request that needs the store under 5 s."""
    store, _ = s3_store
    with s3_server.frozen():
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            store.check()
        assert time.monotonic() - started < 5
    closed = StoreSettings(url="s3://nowhere/models", cache_dir=tmp_path / "cache")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    with pytest.raises(StoreUnavailable, match="version store"):
        open_store(closed).check()


def test_the_cache_evicts_the_least_recently_used_files_first(tmp_path):
    cache = HostCache(tmp_path, max_bytes=25)
    (tmp_path / VERSION).mkdir()
    (tmp_path / VERSION / "trained.json").write_text("{}")  # a copy of a stored version
    files = []
    for age, name in ((300, "a"), (200, "b"), (100, "c")):
        path = tmp_path / VERSION / name
        path.write_bytes(b"x" * 10)
        os.utime(path, (time.time() - IN_USE_SECONDS - age,) * 2)
        files.append(path)
    assert cache.evict() == [files[0]]
    assert [p.exists() for p in files] == [False, True, True]


def test_store_settings_refuse_what_they_cannot_use(tmp_path):
    models = tmp_path / "models"
    assert StoreSettings.from_env(models, {}).url == str(models.resolve())
    assert StoreSettings.from_env(models, {"MOVIEREC_MODELS": "s3://b/p"}).is_remote
    for bad in ({"MOVIEREC_MODELS": "gs://b"}, {"MOVIEREC_MODELS": "s3://"}):
        with pytest.raises(StoreSettingsError):
            StoreSettings.from_env(models, bad)
    with pytest.raises(StoreSettingsError, match="MOVIEREC_STORE_READ_TIMEOUT"):
        StoreSettings.from_env(models, {"MOVIEREC_STORE_READ_TIMEOUT": "soon"})


@pytest.fixture
def s3_store(s3_server, tmp_path, monkeypatch) -> tuple[VersionStore, StoreSettings]:
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    settings = StoreSettings(url=s3_server.new_bucket(), cache_dir=tmp_path / "host" / "models")
    return open_store(settings), settings


def test_a_version_folder_from_before_the_markers_is_adopted_whole(tmp_path):
    store = VersionStore(LocalBackend(tmp_path), None)
    old = with_users(written(tmp_path))
    for name in VersionFolder.REQUIRED:
        (old.path / name).touch()
    assert store.fetch(VERSION).path == old.path
    assert old.marker(COMPLETE).is_file() and old.marker(TRAINED).is_file()


def test_a_version_being_written_is_not_adopted(tmp_path):
    store = VersionStore(LocalBackend(tmp_path), None)
    folder = written(tmp_path)
    store.commit_trained(folder)
    for name in VersionFolder.REQUIRED:
        (folder.path / name).touch()  # the user files of a publish not yet sealed
    with pytest.raises(VersionNotReady):
        VersionStore(LocalBackend(tmp_path), None).fetch(VERSION)


def test_pruning_removes_the_markers_before_the_files(tmp_path):
    store = VersionStore(LocalBackend(tmp_path), None)
    store.commit(with_users(written(tmp_path / "trainer")))
    deleted: list[list[str]] = []
    delete = store.backend.delete
    store.backend.delete = lambda keys: deleted.append(sorted(keys)) or delete(keys)
    assert store.prune(set(), keep=0, abandon_after=600, now=datetime.now(UTC)) == [VERSION]
    assert deleted[0] == [f"{VERSION}/complete.json", f"{VERSION}/trained.json"]


def test_the_cache_leaves_markers_and_folders_it_did_not_fill(tmp_path):
    cache = HostCache(tmp_path, max_bytes=0)
    copy, own = tmp_path / VERSION, tmp_path / "20250101T000000000000Z-ffff0000"
    for folder in (copy, own):
        folder.mkdir()
        (folder / "movies.parquet").write_bytes(b"x" * 10)
    (copy / "trained.json").write_text("{}")
    old = time.time() - IN_USE_SECONDS - 10
    for path in (*copy.iterdir(), *own.iterdir()):
        os.utime(path, (old, old))
    assert cache.evict() == [copy / "movies.parquet"]
    assert (copy / "trained.json").is_file() and (own / "movies.parquet").is_file()


def test_a_fetch_that_downloads_keeps_the_cache_within_its_bound(s3_store, tmp_path):
    store, settings = s3_store
    store.commit_trained(written(tmp_path / "trainer"))
    stale = settings.cache_dir / "20250101T000000000000Z-ffff0000"
    stale.mkdir(parents=True)
    (stale / "trained.json").write_text("{}")
    (stale / "movies.parquet").write_bytes(b"x" * 100)
    old = time.time() - IN_USE_SECONDS - 10
    os.utime(stale / "movies.parquet", (old, old))
    reader = VersionStore(
        store.backend, HostCache(settings.cache_dir, max_bytes=len(CATALOG_BYTES))
    )
    reader.fetch(VERSION, ("movies.parquet",), TRAINED)
    assert not (stale / "movies.parquet").exists()
    assert (settings.cache_dir / VERSION / "movies.parquet").is_file()
