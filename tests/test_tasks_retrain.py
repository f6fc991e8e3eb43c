"""The retrain task chain's guards against lost locks, leaks and redelivery (fakeredis, eager)."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path
from types import SimpleNamespace

import fakeredis
import pytest

from cache import keys, versions
from cache.publish import PublishError
from cache.settings import get_settings
from cache.writer import write_catalog, write_users
from pipeline.artifacts import ModelsFolder, UserLists
from pipeline.params import FAVORITE_CLUSTER, PERSONAL, PersonalOptions, PipelineParams
from tasks import jobs
from tasks import retrain as retrain_module
from tasks.jobs import record_chunk_done, record_job, retrain_lock
from tests.serving_helpers import FAVORITES, RECOMMENDATIONS, fake_version

JOB = "job-1"
VERSION = "20260101T000000Z-aaaa"


@pytest.fixture
def r(monkeypatch) -> fakeredis.FakeRedis:
    server = fakeredis.FakeRedis()
    monkeypatch.setattr(retrain_module, "get_redis", lambda: server)
    return server


@pytest.fixture
def lock(r):
    return retrain_lock(r, get_settings())


def test_a_failed_hand_off_to_the_chord_releases_the_lock(r, lock, monkeypatch):
    def broken_replace(work):
        raise ConnectionError("broker down")

    monkeypatch.setattr(retrain_module, "_train_and_stage", lambda task, r, job_id: "chord")
    monkeypatch.setattr(retrain_module.retrain, "replace", broken_replace)
    assert lock.acquire(JOB)
    result = retrain_module.retrain.apply(task_id=JOB)
    assert isinstance(result.result, ConnectionError)
    assert lock.holder() is None


def never_train(task, r, job_id):
    raise AssertionError("trained again")


def test_a_redelivered_retrain_after_its_hand_off_does_not_train_again(r, lock, monkeypatch):
    monkeypatch.setattr(retrain_module, "_train_and_stage", never_train)
    assert lock.acquire(JOB)
    record_job(r, JOB, "retrain", version=VERSION, chunks_total=2)
    result = retrain_module.retrain.apply(task_id=JOB)
    assert result.state == "IGNORED"
    assert lock.holder() == JOB  # the chord in flight still owns it


def test_publish_refuses_to_flip_after_losing_the_lock(r, lock):
    assert lock.acquire("newer-job")
    args = ([{"users": 3}], VERSION, 3, JOB)
    result = retrain_module.publish_version.apply(args=args, task_id=JOB)
    assert isinstance(result.result, PublishError)
    assert "retrain lock lost" in str(result.result)
    assert versions.active_version(r) is None
    assert lock.holder() == "newer-job"


def test_a_chunk_stops_when_its_job_lost_the_lock(r, lock):
    assert lock.acquire("newer-job")
    result = retrain_module.users_chunk.apply(args=(VERSION, 1, 10, JOB))
    assert isinstance(result.result, PublishError)
    assert not r.exists(keys.job_key(JOB))


def write_parameters(models: Path, parameters: dict) -> None:
    (models / VERSION).mkdir()
    (models / VERSION / "metadata.json").write_text(json.dumps({"parameters": parameters}))


def test_retrain_keeps_the_served_versions_parameters(tmp_path):
    served = PipelineParams(
        recommender=FAVORITE_CLUSTER,
        k=7,
        choose_k=(5, 7),
        list_depth=20,
        factors=8,
        personal=PersonalOptions(damping=0.5, cluster_weighting="count"),
    )
    saved = asdict(served) | {"choose_k": [5, 7], "retired_option": 1}  # JSON has no tuples
    saved["personal"]["retired_option"] = 2
    write_parameters(tmp_path, saved)
    live = ModelsFolder(tmp_path).version(VERSION)
    assert retrain_module.served_params(live) == replace(served, plots=False)


@pytest.mark.parametrize(
    ("written", "read"),
    [("default", PERSONAL), ("spec", FAVORITE_CLUSTER), (None, FAVORITE_CLUSTER)],
)
def test_versions_written_before_the_rename_keep_their_recommender(tmp_path, written, read):
    parameters = {"k": 4, "list_depth": 10} | ({"recommender": written} if written else {})
    write_parameters(tmp_path, parameters)
    assert ModelsFolder(tmp_path).version(VERSION).params().recommender == read


def test_retrain_without_a_served_version_uses_the_defaults(tmp_path):
    assert retrain_module.served_params(None) == PipelineParams(plots=False)


@pytest.fixture
def models(tmp_path, monkeypatch):
    monkeypatch.setenv("MOVIEREC_OUTPUT", str(tmp_path))
    get_settings.cache_clear()
    yield get_settings().output.models.path
    get_settings.cache_clear()


def stage_merged_version(r, models) -> int:
    """A version whose chunks ran and whose parts a first publish attempt already merged."""
    folder = fake_version(models, VERSION)
    versions.mark_staging(r, VERSION)
    write_catalog(r, folder, n_users=len(FAVORITES))
    return write_users(r, VERSION, UserLists(FAVORITES, RECOMMENDATIONS))


def publish(n_users: int):
    args = ([{"users": n_users}], VERSION, n_users, JOB)
    return retrain_module.publish_version.apply(args=args, task_id=JOB)


def test_a_publish_redelivered_after_merging_still_publishes(r, lock, models, monkeypatch):
    monkeypatch.setattr(retrain_module, "_progress", lambda *args, **kwargs: None)
    n_users = stage_merged_version(r, models)
    assert lock.acquire(JOB)
    result = publish(n_users)
    assert result.successful(), result.result
    assert versions.active_version(r) == VERSION
    assert lock.holder() is None


def test_a_publish_redelivered_after_the_flip_reports_the_live_version(r, lock, models):
    n_users = stage_merged_version(r, models)
    versions.flip(r, VERSION)  # the first attempt flipped and released the lock, then died
    result = publish(n_users)
    assert result.successful(), result.result
    assert result.result["version"] == VERSION and result.result["users"] == n_users
    assert versions.read_pointers(r).active == VERSION


def test_a_redelivered_chunk_is_counted_once(r):
    record_job(r, JOB, "retrain", version=VERSION, chunks_total=2)
    assert [record_chunk_done(r, JOB, *chunk) for chunk in ((1, 5), (1, 5), (6, 9))] == [1, 1, 2]


def test_a_failed_jobs_error_is_its_type_and_first_line_only(r):
    failure = FileNotFoundError("no chunk files in " + "x" * 500 + "\n  File /srv/app/x.py")
    meta = {"status": "FAILURE", "result": failure}
    app = SimpleNamespace(backend=SimpleNamespace(get_task_meta=lambda job_id: meta))
    record_job(r, JOB, "retrain")
    error = jobs.job_status(app, r, JOB)["error"]
    assert error.startswith("FileNotFoundError: no chunk files in ")
    assert "x.py" not in error and len(error) == jobs.ERROR_CHARS
