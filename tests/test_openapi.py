"""The OpenAPI document against the app: every route in it and nothing else, and schemathesis
fuzzing every operation of a real published version with and without the token."""

from __future__ import annotations

import re

import fakeredis
import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.configuration import set_hypothesis_home_dir
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.config import NotAServerErrorConfig, PositiveDataAcceptanceConfig

from cache.publish import publish_version_dir
from db.database import Database
from db.importer import import_folder
from service.embedded_postgres import running_postgres
from tests.test_web_api import RecordingCelery
from web import create_app
from web.openapi import UNDOCUMENTED, document

TOKEN = "fuzz-token"
EXAMPLES = 12  # per operation and mode: enough to hit every status, short enough for CI


def flask_path(rule: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule)


def app_operations(app) -> set[tuple[str, str]]:
    return {
        (flask_path(rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if not rule.rule.startswith(UNDOCUMENTED)
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }


def documented_operations() -> set[tuple[str, str]]:
    return {(path, method) for path, item in document()["paths"].items() for method in item}


def test_every_route_is_documented_and_every_documented_route_exists():
    app = create_app({"REDIS": fakeredis.FakeRedis(), "API_TOKEN": TOKEN})
    assert app_operations(app) == documented_operations()


def test_the_guarded_operations_are_the_ones_that_write_or_start_jobs():
    guarded = {
        (path, method)
        for path, item in document()["paths"].items()
        for method, operation in item.items()
        if operation.get("security")
    }
    assert guarded == {op for op in documented_operations() if op[1] in ("post", "patch", "delete")}


@pytest.fixture(scope="module", autouse=True)
def tool_caches_outside_the_clone(tmp_path_factory):
    """Hypothesis and schemathesis keep what they learn in .hypothesis/ and .schemathesis/ of
    the working folder: here a temporary one, so that a test run leaves the clone as it was."""
    folder = tmp_path_factory.mktemp("fuzz-caches")
    set_hypothesis_home_dir(folder / ".hypothesis")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        yield
    set_hypothesis_home_dir(None)


@pytest.fixture(scope="module")
def fuzz_app(small_run, small_data, tmp_path_factory):
    """A real version in a fake cache, a real database with the synthetic folder, no broker."""
    r = fakeredis.FakeRedis()
    publish_version_dir(r, small_run.folder)
    with running_postgres(tmp_path_factory.mktemp("pg")) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            import_folder(conn, small_data, tmp_path_factory.mktemp("out"), progress=False)
        database = Database(url)
        config = {"REDIS": r, "CELERY": RecordingCelery(), "DATABASE": database}
        yield create_app(config | {"API_TOKEN": TOKEN})
        database.close()


ALL = list(HealthCheck)


def operations(app) -> list:
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    checks = schema.config.checks
    # A documented 503 (a part of the service is down: here, no worker) is an answer; any other
    # 5xx, a 500 above all, is a failure.
    checks.not_a_server_error = NotAServerErrorConfig(
        expected_statuses=["2xx", "3xx", "4xx", "503"]
    )
    # Valid ids may name nothing (404), a rating may name a movie that does not exist (422).
    checks.positive_data_acceptance = PositiveDataAcceptanceConfig(
        expected_statuses=["2xx", "401", "404", "409", "422", "503"]
    )
    return [result.ok() for result in schema.get_all_operations()]


def fuzz(operation, mode: GenerationMode, headers: dict[str, str]) -> None:
    """Every generated request of one operation: no 500, and a response the document allows."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def run(case) -> None:
        case.call_and_validate(headers=headers)

    try:
        run()
    except Unsatisfiable:  # nothing to make invalid: an operation without parameters or body
        assert mode is GenerationMode.NEGATIVE, operation.label


@pytest.mark.integration
@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda mode: mode.value)
@pytest.mark.parametrize("token", [TOKEN, None], ids=["with token", "without token"])
def test_every_operation_answers_as_documented(fuzz_app, mode, token):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    for operation in operations(fuzz_app):
        fuzz(operation, mode, headers)
