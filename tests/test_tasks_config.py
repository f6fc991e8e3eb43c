"""Settings from the environment, the Celery configuration and the CLI's command set."""

from __future__ import annotations

import pytest
from celery.schedules import crontab

from cache.settings import Settings, SettingsError
from service.cli import build_parser
from tasks.celery_app import TASK_CLEANUP, TASK_RETRAIN, celery_config, time_limits


def test_defaults():
    settings = Settings.from_env({})
    assert settings.redis_url is None
    assert settings.broker_url == "redis://127.0.0.1:6379/0"
    assert settings.retrain_cron == "0 3 * * 0"
    assert settings.out_dir.name == "output" and settings.out_dir.is_absolute()
    assert settings.api_token is None


def test_environment_overrides(tmp_path):
    settings = Settings.from_env(
        {
            "REDIS_URL": "redis://cache:6379/2",
            "MOVIEREC_DATA": str(tmp_path),
            "MOVIEREC_OUTPUT": str(tmp_path / "out"),
            "MOVIEREC_CHUNK_USERS": "250",
            "MOVIEREC_RETRAIN_CRON": "30 1 * * 1",
            "MOVIEREC_LOCK_TTL": "6",
        }
    )
    assert settings.broker_url == "redis://cache:6379/2"
    assert settings.data_dir == tmp_path
    assert settings.output.models.path == tmp_path / "out" / "models"
    assert settings.chunk_users == 250
    assert settings.lock_ttl_seconds == 6


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("MOVIEREC_CHUNK_USERS", "many", "not an integer"),
        ("MOVIEREC_CHUNK_USERS", "0", "must be positive"),
        ("MOVIEREC_GRACE_SECONDS", "-5", "must be positive"),
        ("MOVIEREC_LOCK_TTL", "0", "positive"),
        ("MOVIEREC_LOCK_TTL", "soon", "not an integer"),
        ("MOVIEREC_RETRAIN_CRON", "weekly", "minute hour day month weekday"),
        ("MOVIEREC_RETRAIN_CRON", "99 3 * * 0", "minute hour day month weekday"),
    ],
)
def test_bad_values_name_the_variable(name, value, message):
    with pytest.raises(SettingsError, match=message) as error:
        Settings.from_env({name: value})
    assert name in str(error.value)


def test_lock_outlives_the_hard_limits():
    settings = Settings.from_env(
        {"MOVIEREC_RETRAIN_TIME_LIMIT": "600", "MOVIEREC_CHUNK_TIME_LIMIT": "60"}
    )
    assert settings.job_deadline_seconds == settings.retrain_time_limit + settings.chunk_time_limit
    assert settings.lock_ttl_seconds == 60  # a heartbeat renews it; a dead holder frees it fast
    for hard in (600, 10):
        limits = time_limits(hard)
        assert limits["time_limit"] == hard and 0 < limits["soft_time_limit"] < hard


def test_celery_speaks_json_only_and_does_not_lose_work():
    settings = Settings.from_env({"REDIS_URL": "redis://example:6379/0"})
    conf = celery_config(settings)
    assert conf["accept_content"] == ["json"] and conf["result_accept_content"] == ["json"]
    assert conf["task_serializer"] == conf["result_serializer"] == "json"
    assert conf["task_acks_late"] and conf["task_reject_on_worker_lost"]
    assert conf["worker_prefetch_multiplier"] == 1
    assert conf["broker_connection_retry_on_startup"]
    visibility = conf["broker_transport_options"]["visibility_timeout"]
    assert visibility > settings.retrain_time_limit + settings.chunk_time_limit
    assert conf["broker_url"] == conf["result_backend"] == "redis://example:6379/0"


def test_beat_schedules_the_retrain_from_the_cron_setting():
    conf = celery_config(Settings.from_env({"MOVIEREC_RETRAIN_CRON": "15 4 * * 2"}))
    retrain = conf["beat_schedule"]["retrain"]
    assert retrain["task"] == TASK_RETRAIN
    assert retrain["schedule"] == crontab(minute="15", hour="4", day_of_week="2")
    assert conf["beat_schedule"]["cleanup-versions"]["task"] == TASK_CLEANUP


def test_cli_keeps_the_offline_commands_and_adds_the_serving_ones():
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    offline = {"download", "synth", "pipeline", "assign"}
    serving = {"worker", "beat", "web", "up", "publish", "rollback", "status"}
    assert offline | serving <= set(commands)
    args = parser.parse_args(["up", "--bind", "127.0.0.1:9000", "--redis-port", "7000"])
    assert (args.bind, args.redis_port) == ("127.0.0.1:9000", 7000)
