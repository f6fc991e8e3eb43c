"""The Redis layout of a published version, the pointer flip, rollback and clean-up (fakeredis)."""

from __future__ import annotations

import json

import fakeredis
import pandas as pd
import pytest

from cache import keys, versions
from cache.lock import TokenLock
from cache.publish import PublishError, finish_publish, publish_version_dir
from cache.reader import CacheReader, LengthTooLong, NoActiveVersion
from cache.writer import encode_users, write_catalog, write_users
from pipeline.artifacts import (
    COMPLETE,
    ModelsFolder,
    UserLists,
    VersionFolder,
    write_user_part,
)
from store.local import LocalBackend
from store.versions import VersionStore
from tasks.fanout import user_ranges
from tasks.retrain import complete_version
from tests.serving_helpers import DEPTH, FAVORITES, RECOMMENDATIONS, fake_version

V1, V2, V3 = "20260101T000000Z-aaaa", "20260102T000000Z-bbbb", "20260103T000000Z-cccc"


@pytest.fixture
def r() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis()


@pytest.fixture
def models(tmp_path):
    return tmp_path / "models"


def hash_json(r, key: str, field: int) -> dict:
    return json.loads(r.hget(key, field))


def test_published_version_holds_every_documented_value(r, models):
    summary = publish_version_dir(r, fake_version(models, V1))
    ns = keys.VersionKeys(V1)

    assert summary["version"] == V1 and summary["previous"] is None and summary["users"] == 3
    assert r.get(keys.ACTIVE) == V1.encode()
    assert hash_json(r, ns.movies, 60) == {
        "title": "Zeta (2005)",
        "genres": "",
        "cluster": 1,
        "score": 3.3,
        "n_ratings": 0,
        "avg_rating": None,  # no ratings: null, never NaN (which is not JSON)
    }
    assert hash_json(r, ns.similar, 10) == {"movies": [20, 30], "scores": [0.9, 0.5]}
    assert hash_json(r, ns.users, 3) == {
        "favorite_cluster": 0,
        "n_ratings": 3,
        "counts": [3, 0],
        "movies": [40, 50, 60],
        "scores": [4.0, 3.6, 3.3],
        "sources": "111",
    }
    assert json.loads(r.get(ns.members(0))) == [10, 20, 30]
    assert json.loads(r.get(ns.members(1))) == [40, 50, 60]
    assert json.loads(r.get(ns.popular)) == [10, 40, 20]
    assert [c["cluster"] for c in json.loads(r.get(ns.clusters))] == [0, 1]
    meta = json.loads(r.get(ns.meta))
    assert meta["depth"] == DEPTH
    assert meta["sources"] == ["cluster", "popular"]
    assert meta["counts"] == {"movies": 6, "users": 3, "clusters": 2}
    assert meta["trained_at"] == "2026-01-01T00:00:00+00:00"


def test_every_key_of_a_version_lives_in_its_namespace(r, models):
    publish_version_dir(r, fake_version(models, V1))
    globals_ = {keys.ACTIVE.encode(), keys.STAGING.encode(), keys.RETIRED.encode()}
    outside = [k for k in r.keys("*") if k not in globals_]
    assert outside and all(k.startswith(f"movierec:v:{V1}:".encode()) for k in outside)


def test_user_entries_store_ids_not_titles(models):
    entries = dict(encode_users(FAVORITES, RECOMMENDATIONS))
    assert set(entries) == {1, 2, 3}
    assert "Beta" not in entries[1]
    assert json.loads(entries[2])["sources"] == "011"


def test_unknown_recommendation_source_is_refused():
    bad = RECOMMENDATIONS.assign(source=["cluster"] * 8 + ["random"])
    with pytest.raises(ValueError, match="'random'"):
        dict(encode_users(FAVORITES, bad))


def test_flip_keeps_the_previous_version_and_retires_the_one_before(r, models):
    for version in (V1, V2, V3):
        publish_version_dir(r, fake_version(models, version))
    pointers = versions.read_pointers(r)
    assert (pointers.active, pointers.previous) == (V3, V2)
    assert pointers.retired == [V1] and pointers.staging == []


def test_flip_refuses_a_version_without_metadata(r):
    with pytest.raises(Exception, match="no metadata"):
        versions.flip(r, V1)
    assert r.get(keys.ACTIVE) is None


def test_incomplete_users_leave_the_pointer_alone(r, models):
    publish_version_dir(r, fake_version(models, V1))
    folder3 = fake_version(models, V3)
    write_catalog(r, folder3, n_users=3)
    write_users(r, V3, UserLists(FAVORITES.iloc[:2], RECOMMENDATIONS))
    with pytest.raises(PublishError, match="2 users cached, expected 3"):
        finish_publish(r, V3, expected_users=3)
    assert versions.active_version(r) == V1


def test_publish_refuses_a_folder_with_missing_files(r, models):
    folder = fake_version(models, V1)
    folder.recommendations.unlink()
    with pytest.raises(PublishError, match=r"missing user_recommendations\.parquet"):
        publish_version_dir(r, folder)
    assert r.get(keys.ACTIVE) is None


def test_rollback_swaps_active_and_previous(r, models):
    publish_version_dir(r, fake_version(models, V1))
    with pytest.raises(versions.NoPreviousVersion):
        versions.rollback(r)
    publish_version_dir(r, fake_version(models, V2))
    assert versions.rollback(r) == (V1, V2)
    assert versions.rollback(r) == (V2, V1)


def test_cleanup_waits_for_the_grace_period_and_spares_live_versions(r, models):
    for version in (V1, V2, V3):
        publish_version_dir(r, fake_version(models, version))
    retired_at = r.zscore(keys.RETIRED, V1)
    assert (
        versions.cleanup(r, grace_seconds=60, stale_staging_seconds=60, now=retired_at + 30) == []
    )
    assert r.exists(keys.VersionKeys(V1).meta)
    dropped = versions.cleanup(r, grace_seconds=60, stale_staging_seconds=60, now=retired_at + 61)
    assert dropped == [V1]
    assert r.keys(f"movierec:v:{V1}:*") == []
    assert r.exists(keys.VersionKeys(V2).meta) and r.exists(keys.VersionKeys(V3).meta)


def test_cleanup_drops_abandoned_staging(r, models):
    versions.mark_staging(r, V1, now=1000.0)
    r.set(keys.VersionKeys(V1).meta, "{}")
    assert versions.cleanup(r, grace_seconds=1, stale_staging_seconds=50, now=1040.0) == []
    assert versions.cleanup(r, grace_seconds=1, stale_staging_seconds=50, now=1051.0) == [V1]
    assert r.keys("movierec:v:*") == []


def test_version_ids_cannot_escape_the_namespace():
    for bad in ("a*b", "x:y", "../etc", "", "a b"):
        with pytest.raises(ValueError):
            keys.VersionKeys(bad)


def test_reader_sees_a_flip_at_once_and_never_mixes_versions(r, models):
    publish_version_dir(r, fake_version(models, V1, " [v1]"))
    reader = CacheReader(r)
    assert reader.movie(10)["title"] == "Alpha (2000) [v1]"
    assert {m["title"] for m in reader.user_recommendations(1, 3)} == {
        "Beta (2001) [v1]",
        "Gamma (2002) [v1]",
        "Epsilon (2004) [v1]",
    }
    publish_version_dir(r, fake_version(models, V2, " [v2]"))
    assert reader.movie(10)["title"] == "Alpha (2000) [v2]"  # no stale pointer
    assert {m["title"] for m in reader.user_recommendations(1, 3)} == {
        "Beta (2001) [v2]",
        "Gamma (2002) [v2]",
        "Epsilon (2004) [v2]",
    }


class CountingRedis:
    """Counts the client calls that go to the server (a script call is one)."""

    def __init__(self, inner) -> None:
        self.inner, self.calls = inner, 0

    def __getattr__(self, name):
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def counted(*args, **kwargs):
            self.calls += 1
            return attr(*args, **kwargs)

        return counted


def test_a_users_list_costs_one_round_trip(r, models):
    publish_version_dir(r, fake_version(models, V1))
    counting = CountingRedis(r)
    reader = CacheReader(r)
    reader.user_recommendations(1, 3)  # the version's metadata, genres and titles, once
    reader.r = counting
    reader._read_active.registered_client = counting
    assert reader.user_recommendations(1, 3)
    assert counting.calls == 1


def test_asking_for_more_than_the_lists_hold_is_refused(r, models):
    publish_version_dir(r, fake_version(models, V1))
    with pytest.raises(LengthTooLong, match="from 1 to 3"):
        CacheReader(r).user_recommendations(1, 4)


def test_reader_without_a_version_says_so(r):
    with pytest.raises(NoActiveVersion):
        CacheReader(r).movie(10)


def test_token_lock_only_yields_to_its_holder(r):
    lock = TokenLock(r, keys.RETRAIN_LOCK, ttl_seconds=60)
    assert lock.acquire("job-a")
    assert not lock.acquire("job-b")
    assert lock.acquire("job-a")  # a redelivered job keeps its own lock
    assert lock.holder() == "job-a"
    assert not lock.release("job-b") and lock.holder() == "job-a"
    assert not lock.extend("job-b")
    assert lock.release("job-a") and lock.holder() is None
    assert lock.acquire("job-b")


def test_token_lock_expires(r):
    lock = TokenLock(r, keys.RETRAIN_LOCK, ttl_seconds=60)
    lock.acquire("job-a")
    assert 0 < r.pttl(keys.RETRAIN_LOCK) <= 60_000


def test_user_ranges_cover_every_user_once():
    ids = [7, 3, 3, 11, 5, 20, 1]
    assert user_ranges(ids, 2) == [(1, 3), (5, 7), (11, 20)]
    assert user_ranges(ids, 100) == [(1, 20)]
    assert user_ranges([], 5) == []
    with pytest.raises(ValueError):
        user_ranges(ids, 0)


def test_chunk_parts_merge_into_the_documented_user_files(tmp_path):
    store = VersionStore(LocalBackend(tmp_path / "models"), None)
    folder = VersionFolder(tmp_path / "models" / "20260101T000000Z-aaaa")
    folder.path.mkdir(parents=True)
    folder.metadata.write_text("{}")
    store.commit_trained(folder)
    for lo, hi in ((3, 3), (1, 2)):  # written out of order, as parallel chunks finish
        fav = FAVORITES[FAVORITES["userId"].between(lo, hi)]
        recs = RECOMMENDATIONS[RECOMMENDATIONS["userId"].between(lo, hi)]
        for part in write_user_part(tmp_path / "chunk", lo, hi, UserLists(fav, recs)):
            store.put_part(folder.version, part)
    with pytest.raises(PublishError, match="hold 3 users, not 4"):
        complete_version(store, folder.version, 4)  # a part the listing did not show
    complete_version(store, folder.version, 3)
    complete_version(store, folder.version, 3)  # a redelivered publish keeps the merged files
    pd.testing.assert_frame_equal(pd.read_parquet(folder.favorites), FAVORITES)
    pd.testing.assert_frame_equal(pd.read_parquet(folder.recommendations), RECOMMENDATIONS)
    assert not folder.parts.exists()
    assert store.versions()[0].stage == COMPLETE


def test_latest_version_needs_a_complete_folder(models):
    folder = fake_version(models, V1)
    assert ModelsFolder(models).latest() == folder
    folder.favorites.unlink()  # what train() leaves before the chunks run
    assert ModelsFolder(models).latest() is None
    assert ModelsFolder(models.parent / "nowhere").latest() is None


def test_a_truncated_file_is_refused_and_nothing_stays_staged(r, models):
    publish_version_dir(r, fake_version(models, V1))
    folder = fake_version(models, V2)
    data = folder.movies.read_bytes()
    folder.movies.write_bytes(data[: len(data) // 2])
    with pytest.raises(PublishError, match="cannot be read"):
        publish_version_dir(r, folder)
    assert versions.active_version(r) == V1
    assert list(r.scan_iter(keys.VersionKeys(V2).pattern)) == []
    assert versions.read_pointers(r).staging == []
