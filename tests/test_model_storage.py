"""The model in both formats: written with checksums, loaded only when verified, same labels."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from cache.reader import ActiveModel
from pipeline.artifacts import DEFAULT_MODEL_FORMAT, JOBLIB, MODEL_FORMATS, VersionFolder
from pipeline.data.cleaning import clean
from pipeline.data.readers import read_dataset
from pipeline.model.export import save_models, to_onnx
from pipeline.model.loader import (
    ModelFileError,
    OnnxModel,
    assign_movie,
    load_model,
    sha256,
)
from pipeline.run import PipelineParams, build
from service.cli import main
from store.local import LocalBackend
from store.objects import StoreUnavailable
from store.versions import VersionStore, store_for_output
from tests.test_architecture import PACKAGES, ROOT, modules, string_literals
from web.errors import ApiError
from web.new_movies import ModelCache

# What the web process does on its first new movie, in a fresh interpreter.
LIGHT_PROBE = """
import sys
from pathlib import Path
from pipeline.artifacts import VersionFolder
from pipeline.model.loader import assign_movie, load_model
print(assign_movie(load_model(VersionFolder(Path(sys.argv[1]))), "Comedy"))
print(",".join(m for m in ("pandas", "sklearn", "joblib") if m in sys.modules))
"""


@pytest.fixture(scope="module")
def version(small_run) -> VersionFolder:
    return small_run.folder


@pytest.fixture(scope="module")
def catalogue(version) -> pd.DataFrame:
    return pd.read_parquet(version.movies)


@pytest.fixture
def copy(version, tmp_path) -> VersionFolder:
    """The model files and metadata of the small run's version, to tamper with."""
    folder = VersionFolder(tmp_path / version.version)
    folder.path.mkdir()
    for path in (version.metadata, *(version.model_file(f) for f in MODEL_FORMATS)):
        shutil.copy(path, folder.path / path.name)
    return folder


def test_the_onnx_file_name_is_spelled_only_where_every_file_name_is():
    name = VersionFolder(Path("v")).onnx_model.name
    owner = ROOT / "pipeline" / "artifacts.py"
    spelled = [
        path
        for package in PACKAGES
        for path in modules(package)
        if path != owner and name in string_literals(path)
    ]
    assert spelled == [] and name in string_literals(owner)


def test_every_format_is_written_with_its_checksum(version):
    recorded = version.read_metadata()["model_files"]
    files = [version.model_file(model_format) for model_format in MODEL_FORMATS]
    assert recorded == {path.name: sha256(path.read_bytes()) for path in files}


@pytest.mark.parametrize("model_format", MODEL_FORMATS)
def test_each_format_gives_every_catalogue_movie_its_cluster(version, catalogue, model_format):
    labels = load_model(version, model_format).predict(catalogue)
    assert (labels == catalogue["cluster"].to_numpy()).all()


def test_a_model_pickled_before_the_stages_had_folders_still_loads(version, catalogue):
    """Older joblib files name the featurizer `pipeline.features.MovieFeaturizer`."""
    model = load_model(version, JOBLIB)
    text = pickle.dumps(model, protocol=0)
    old = text.replace(b"pipeline.features.featurizer\n", b"pipeline.features\n")
    assert old != text
    labels = pickle.loads(old).predict(catalogue)
    assert (labels == catalogue["cluster"].to_numpy()).all()


@pytest.mark.parametrize("genres", ["Animation|Children|Comedy", "Drama", "", "Unknown|Horror"])
def test_both_formats_place_a_new_movie_alike(version, genres):
    onnx, pickled = (load_model(version, model_format) for model_format in MODEL_FORMATS)
    assert assign_movie(onnx, genres) == assign_movie(pickled, genres)
    assert assign_movie(onnx, genres, 4.5, 120) == assign_movie(pickled, genres, 4.5, 120)


def test_tag_features_and_other_scalers_export_exactly(small_data):
    """Tags, robust scaling, full KMeans and no factors: the graph's other branches."""
    params = PipelineParams(
        tag_features=100,
        scaling="robust",
        algorithm="kmeans",
        recommender="favorite-cluster",
        plots=False,
    )
    built = build(clean(read_dataset(small_data)), params, with_users=False)
    labels = OnnxModel.from_bytes(to_onnx(built.model)).predict(built.movies)
    assert (labels == built.movies["cluster"].to_numpy()).all()


def test_a_changed_file_is_refused(copy):
    path = copy.model_file("joblib")
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(ModelFileError, match="does not match the sha256"):
        load_model(copy, "joblib")
    assert load_model(copy, "onnx") is not None  # the other file is still intact


def test_a_file_linked_from_outside_the_folder_is_refused(copy, version, tmp_path):
    elsewhere = tmp_path / "elsewhere.pkl"
    shutil.move(copy.model_file("joblib"), elsewhere)
    copy.model_file("joblib").symlink_to(elsewhere)
    with pytest.raises(ModelFileError, match="outside the version folder"):
        load_model(copy, "joblib")


@pytest.mark.parametrize("model_format", MODEL_FORMATS)
def test_a_version_without_checksums_is_refused_with_what_to_do(copy, model_format):
    metadata = copy.read_metadata()
    del metadata["model_files"]
    copy.metadata.write_text(json.dumps(metadata))
    with pytest.raises(ModelFileError, match=r"no checksum .* retrain"):
        load_model(copy, model_format)


def test_a_missing_file_is_refused(copy):
    copy.model_file("onnx").unlink()
    with pytest.raises(ModelFileError, match="missing"):
        load_model(copy, "onnx")


def test_save_models_records_what_it_wrote(version, tmp_path):
    folder = VersionFolder(tmp_path)
    model = load_model(version, JOBLIB)
    assert save_models(folder, model) == {
        path.name: sha256(path.read_bytes())
        for path in (folder.model_file(f) for f in MODEL_FORMATS)
    }


def test_assign_loads_either_format_of_a_chosen_version(small_run, capsys):
    out = str(small_run.folder.path.parents[1])
    store_for_output(Path(out)).commit(small_run.folder)
    results = set()
    for model_format in MODEL_FORMATS:
        args = ["assign", "--genres", "Drama|War", "--out", out, "--format", model_format]
        assert main([*args, "--version", small_run.version]) == 0
        results.add(int(capsys.readouterr().out))
    assert len(results) == 1


def test_assign_refuses_an_unknown_version_in_one_line(small_run, capsys):
    out = str(small_run.folder.path.parents[1])
    assert main(["assign", "--genres", "Drama", "--out", out, "--version", "nope"]) == 1
    assert capsys.readouterr().err.startswith("movierec: error: ")


def test_the_onnx_model_places_a_movie_without_pandas_or_scikit_learn(version):
    assert DEFAULT_MODEL_FORMAT == "onnx"
    args = [sys.executable, "-c", LIGHT_PROBE, str(version.path)]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[1] == "" and 0 <= int(out[0]) < 10


def active(folder: VersionFolder) -> ActiveModel:
    return ActiveModel(folder.version, {})


def model_cache(folder: VersionFolder, model_format: str = DEFAULT_MODEL_FORMAT) -> ModelCache:
    """A web process's model cache over a store holding `folder`, committed as it is."""
    store = VersionStore(LocalBackend(folder.path.parent), None)
    store.commit_trained(folder)
    return ModelCache(store, model_format)


def test_the_web_answers_503_for_a_version_it_cannot_trust(copy):
    metadata = copy.read_metadata()
    del metadata["model_files"]
    copy.metadata.write_text(json.dumps(metadata))
    with pytest.raises(ApiError) as refused:
        model_cache(copy).cluster_of(active(copy), "Drama")
    assert refused.value.status == 503 and str(copy.path) not in refused.value.message


@pytest.mark.parametrize("model_format", MODEL_FORMATS)
def test_the_web_places_new_movies_with_either_format(version, model_format):
    cluster = model_cache(version, model_format).cluster_of(
        active(version), "Animation|Children|Comedy"
    )
    assert cluster == assign_movie(load_model(version, "joblib"), "Animation|Children|Comedy")


def test_after_a_store_failure_new_movies_are_refused_at_once_for_a_while(version):
    calls: list[str] = []

    class Unreachable(VersionStore):
        def fetch(self, *args, **kwargs):
            calls.append("fetch")
            raise StoreUnavailable("version store: error sending request")

    cache = ModelCache(Unreachable(LocalBackend(version.path.parent), None))
    for _ in range(3):
        with pytest.raises(ApiError) as refused:
            cache.cluster_of(active(version), "Drama")
        assert refused.value.status == 503 and "unreachable" in refused.value.message
    assert calls == ["fetch"]  # the later requests did not wait for the store again
