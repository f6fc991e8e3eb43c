"""No Docker engine here: check the compose file and Dockerfile against the real CLI instead."""

from __future__ import annotations

import itertools
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from service.cli import build_parser
from store.settings import StoreSettings
from tests.serving_helpers import REPO

COMPOSE_TEXT = (REPO / "docker-compose.yml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
SERVICES = COMPOSE["services"]
APP_SERVICES = ("train", "web", "worker", "beat")
LONG_RUNNING = ("web", "worker", "beat")
STORE_SERVICES = ("s3", "bucket")
S3_CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
SECRET_SOURCES = ("S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY")  # the host's names for them
COMPLETED = {"condition": "service_completed_successfully"}
HEALTHY = {"condition": "service_healthy"}


def parses(argv: list[str]) -> bool:
    """True when `movierec ARGV` is accepted by the real parser (argparse exits otherwise)."""
    try:
        build_parser().parse_args(argv)
    except SystemExit:
        return False
    return True


def volume_sources(service: dict) -> set[str]:
    """What a service mounts that another container could mount too: named volumes and host
    paths. An anonymous volume (a target alone) is new for every container, so it is left out."""
    sources = set()
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):  # the long syntax
            source = volume.get("source")
        else:
            source = volume.split(":")[0] if ":" in volume else None
        if source:
            sources.add(source)
    return sources


def shared_volumes(services: dict, names: tuple[str, ...]) -> set[str]:
    """Sources mounted by two or more of `names`."""
    shared = set()
    for a, b in itertools.combinations(names, 2):
        shared |= volume_sources(services[a]) & volume_sources(services[b])
    return shared


def waits_for(services: dict, name: str, other: str, condition: dict) -> bool:
    """True when `name` starts only after `other` met `condition`, directly or through a chain
    of services that each wait for the one before it."""
    seen, todo = set(), [name]
    while todo:
        depends_on = services[todo.pop()].get("depends_on", {})
        if isinstance(depends_on, list):  # the short syntax: started, nothing more
            depends_on = {key: {"condition": "service_started"} for key in depends_on}
        if depends_on.get(other) == condition:
            return True
        todo.extend(d for d in depends_on if d not in seen)
        seen.update(depends_on)
    return False


def models_bucket(service: str) -> str:
    return SERVICES[service]["environment"]["MOVIEREC_MODELS"].removeprefix("s3://").split("/")[0]


def test_every_role_is_present():
    assert set(SERVICES) == {"postgres", "redis", *STORE_SERVICES, *APP_SERVICES}


def test_postgres_keeps_data_reports_health_and_every_role_uses_it():
    postgres = SERVICES["postgres"]
    assert postgres["image"].startswith("postgres:")
    assert "postgres-data:/var/lib/postgresql/data" in postgres["volumes"]
    assert "pg_isready" in postgres["healthcheck"]["test"]
    assert ":?" in postgres["environment"]["POSTGRES_PASSWORD"]  # no default password
    assert "ports" not in postgres  # reachable from the other containers only
    for name in APP_SERVICES:
        url = SERVICES[name]["environment"]["MOVIEREC_DATABASE_URL"]
        assert url.startswith("postgresql://movierec:") and url.endswith("@postgres:5432/movierec")
        assert SERVICES[name]["depends_on"]["postgres"] == HEALTHY


@pytest.mark.parametrize("name", APP_SERVICES)
def test_each_command_is_a_real_movierec_subcommand(name):
    command = SERVICES[name]["command"]
    assert command[0] == "movierec"
    assert parses(command[1:]), command


def test_the_parser_check_can_fail():
    assert not parses(["serve"]) and not parses(["web", "--port", "80"])


def test_redis_keeps_data_and_never_evicts():
    command = " ".join(SERVICES["redis"]["command"])
    assert "--appendonly yes" in command
    assert "--maxmemory-policy noeviction" in command
    assert SERVICES["redis"]["volumes"]


def test_services_wait_for_the_first_training():
    for name in LONG_RUNNING:
        assert SERVICES[name]["depends_on"]["train"] == COMPLETED
    assert SERVICES["train"]["restart"] == "no"


def test_the_bucket_step_runs_before_training_and_every_app_service():
    for name in APP_SERVICES:
        assert SERVICES[name]["depends_on"]["bucket"] == COMPLETED, name
    assert waits_for(SERVICES, "bucket", "s3", HEALTHY)
    assert SERVICES["bucket"]["restart"] == "no"
    assert "ports" not in SERVICES["bucket"]


def test_the_bucket_step_creates_the_bucket_the_services_use_and_tolerates_it_existing():
    buckets = {models_bucket(name) for name in APP_SERVICES}
    assert len(buckets) == 1  # one store for every role
    script = " ".join(SERVICES["bucket"]["command"])
    bucket = buckets.pop()
    create = f"aws s3api create-bucket --bucket {bucket}"
    # A second `up` finds the bucket there: the head-bucket check must come first.
    assert f"aws s3api head-bucket --bucket {bucket} 2>/dev/null || {create}" in script
    assert SERVICES["bucket"]["entrypoint"] == ["/bin/sh", "-c"]


def test_the_dependency_check_can_fail():
    assert not waits_for(SERVICES, "s3", "train", COMPLETED)  # the wrong way round
    assert not waits_for(SERVICES, "bucket", "postgres", HEALTHY)
    assert waits_for(SERVICES, "web", "s3", HEALTHY)  # through bucket


def test_every_app_service_keeps_its_versions_in_the_object_store():
    for name in APP_SERVICES:
        env = SERVICES[name]["environment"]
        assert env["MOVIEREC_MODELS"].startswith("s3://"), name
        settings = StoreSettings.from_env(Path(env["MOVIEREC_OUTPUT"]) / "models", env)
        assert settings.is_remote, name
        assert env["AWS_ENDPOINT_URL"] == "http://s3:8333"
        assert env["AWS_DEFAULT_REGION"]


@pytest.mark.parametrize("name", (*APP_SERVICES, *STORE_SERVICES))
def test_the_s3_key_has_no_default_and_is_the_same_everywhere(name):
    env = SERVICES[name]["environment"]
    for variable in S3_CREDENTIALS:
        value = env[variable]
        source = SECRET_SOURCES[S3_CREDENTIALS.index(variable)]
        assert re.fullmatch(rf"\$\{{{source}:\?[^}}]+\}}", value), (name, variable, value)
        assert value == SERVICES["s3"]["environment"][variable]
        # The shell's own AWS key must never become the local store's admin key.
        assert not value.startswith("${AWS_")


def test_the_s3_server_is_maintained_listens_where_services_look_and_publishes_no_port():
    s3 = SERVICES["s3"]
    image, _, tag = s3["image"].partition(":")
    assert image == "chrislusf/seaweedfs" and tag and tag != "latest"
    command = s3["command"]
    assert command[0] == "server" and "-s3" in command
    assert "-s3.port=8333" in command and "-s3.ip.bind=0.0.0.0" in command
    assert "-ip.bind=127.0.0.1" in command  # master, volume server, filer: loopback only
    assert "-master.telemetry=false" in command
    assert "ports" not in s3 and "ports" not in SERVICES["bucket"]
    assert "/healthz" in " ".join(s3["healthcheck"]["test"])
    assert "s3-data:/data" in s3["volumes"]


def test_only_web_publishes_a_port_and_on_loopback_only():
    assert [name for name, service in SERVICES.items() if "ports" in service] == ["web"]
    assert SERVICES["web"]["ports"] == ["127.0.0.1:8000:8000"]


def test_no_volume_is_shared_between_web_worker_and_beat():
    assert shared_volumes(SERVICES, APP_SERVICES) == set()
    assert "output" not in COMPOSE.get("volumes", {})
    for name in APP_SERVICES:
        output = SERVICES[name]["environment"]["MOVIEREC_OUTPUT"]
        # The output folder is either not mounted or an anonymous volume of its own.
        mounted = [v for v in SERVICES[name].get("volumes", []) if v.split(":")[-1] == output]
        assert mounted in ([], [output]), (name, mounted)
        assert volume_sources(SERVICES[name]) <= volume_sources(SERVICES["train"])


def test_the_shared_volume_check_can_fail():
    old = {name: {"volumes": ["output:/app/output"]} for name in LONG_RUNNING}
    assert shared_volumes(old, LONG_RUNNING) == {"output"}
    bound = {"a": {"volumes": ["./out:/app/output"]}, "b": {"volumes": [{"source": "./out"}]}}
    assert shared_volumes(bound, ("a", "b")) == {"./out"}
    assert volume_sources({"volumes": ["/app/output"]}) == set()


def test_only_the_first_training_mounts_the_movielens_folder():
    assert any(v.endswith(":/data:ro") for v in SERVICES["train"]["volumes"])
    assert SERVICES["train"]["environment"]["MOVIEREC_DATA"] == "/data"
    for name in LONG_RUNNING:  # workers read ratings from PostgreSQL
        assert volume_sources(SERVICES[name]) == set(), name
        assert "MOVIEREC_DATA" not in SERVICES[name]["environment"]


def test_a_second_worker_is_one_scale_away():
    worker = SERVICES["worker"]
    for fixed in ("container_name", "ports", "hostname"):
        assert fixed not in worker
    assert "replicas" not in worker.get("deploy", {})
    assert worker["command"][:2] == ["movierec", "worker"]


def test_one_beat_and_one_redis_for_all():
    assert SERVICES["beat"]["deploy"]["replicas"] == 1
    for name in APP_SERVICES:
        assert SERVICES[name]["environment"]["REDIS_URL"] == "redis://redis:6379/0"


def test_job_endpoints_require_a_token_to_be_set():
    assert ":?" in SERVICES["web"]["environment"]["MOVIEREC_API_TOKEN"]


def test_the_header_says_which_variables_to_set():
    header = COMPOSE_TEXT.split("\n\n")[0]
    required = set(re.findall(r"\$\{(\w+):\?", COMPOSE_TEXT))
    assert required == {"POSTGRES_PASSWORD", "MOVIEREC_API_TOKEN", *SECRET_SOURCES}
    for variable in required:
        assert f"{variable}=" in header, variable
    assert "docker compose up" in header and "--scale worker=" in header


def test_dockerfile_default_command_is_a_real_subcommand():
    dockerfile = (REPO / "Dockerfile").read_text()
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, re.MULTILINE)
    argv = yaml.safe_load(cmd.group(1))
    assert argv[0] == "movierec" and parses(argv[1:])
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.MULTILINE)
    for source in ("pipeline", "cache", "db", "tasks", "web", "service"):
        assert f"COPY {source} ./{source}" in dockerfile
    assert "pip install ." in dockerfile


def test_the_image_holds_every_package_pyproject_installs():
    dockerfile = (REPO / "Dockerfile").read_text()
    found = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    packages = [pattern.rstrip("*") for pattern in found["find"]["include"]]
    assert "store" in packages
    missing = [p for p in packages if f"COPY {p} ./{p}" not in dockerfile]
    assert missing == []
