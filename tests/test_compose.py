"""No Docker engine here: check the compose file and Dockerfile against the real CLI instead."""

from __future__ import annotations

import re

import pytest
import yaml

from service.cli import build_parser
from tests.serving_helpers import REPO

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
APP_SERVICES = ("train", "web", "worker", "beat")


def parses(argv: list[str]) -> bool:
    """True when `movierec ARGV` is accepted by the real parser (argparse exits otherwise)."""
    try:
        build_parser().parse_args(argv)
    except SystemExit:
        return False
    return True


def test_every_role_is_present():
    assert set(SERVICES) == {"postgres", "redis", *APP_SERVICES}


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
    for name in ("train", *("web", "worker", "beat")):
        assert SERVICES[name]["depends_on"]["postgres"] == {"condition": "service_healthy"}


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
    for name in ("web", "worker", "beat"):
        assert SERVICES[name]["depends_on"]["train"] == {
            "condition": "service_completed_successfully"
        }
    assert SERVICES["train"]["restart"] == "no"


def test_one_beat_and_a_shared_output_volume():
    assert SERVICES["beat"]["deploy"]["replicas"] == 1
    for name in APP_SERVICES:
        assert "output:/app/output" in SERVICES[name]["volumes"]
        assert SERVICES[name]["environment"]["REDIS_URL"] == "redis://redis:6379/0"


def test_the_api_is_published_on_loopback_only():
    assert SERVICES["web"]["ports"] == ["127.0.0.1:8000:8000"]


def test_job_endpoints_require_a_token_to_be_set():
    assert ":?" in SERVICES["web"]["environment"]["MOVIEREC_API_TOKEN"]


def test_dockerfile_default_command_is_a_real_subcommand():
    dockerfile = (REPO / "Dockerfile").read_text()
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, re.MULTILINE)
    argv = yaml.safe_load(cmd.group(1))
    assert argv[0] == "movierec" and parses(argv[1:])
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.MULTILINE)
    for source in ("pipeline", "cache", "db", "tasks", "web", "service"):
        assert f"COPY {source} ./{source}" in dockerfile
    assert "pip install ." in dockerfile
