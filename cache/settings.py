"""Serving configuration, read from the environment so every process (worker, beat, web) agrees."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.artifacts import OutputFolder
from pipeline.settings import REPO, SettingsError, env_number, find_data_dir
from store.settings import StoreSettings

if TYPE_CHECKING:  # store.versions loads prometheus_client, which must come after the
    from store.versions import VersionStore  # web server sets its multiprocess folder

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
WEEKLY_SUNDAY_3AM = "0 3 * * 0"


@dataclass(frozen=True)
class Settings:
    redis_url: str | None
    database_url: str | None  # none: retrains read the data folder; no live writes
    data_env: str | None  # MOVIEREC_DATA
    out_dir: Path
    api_token: str | None
    retrain_cron: str
    chunk_users: int
    grace_seconds: int
    retrain_time_limit: int
    chunk_time_limit: int
    store: StoreSettings
    lock_ttl_seconds: int = 60  # renewed while the job runs: a dead holder frees it this fast
    keep_versions: int = 3

    @property
    def broker_url(self) -> str:
        return self.redis_url or DEFAULT_REDIS_URL

    @property
    def data_dir(self) -> Path | None:
        """Found anew on each use: a sample downloaded after this process started counts."""
        chosen = self.data_env and str(Path(self.data_env).resolve())
        return find_data_dir(chosen, self.out_dir)

    @property
    def output(self) -> OutputFolder:
        return OutputFolder(self.out_dir)

    @property
    def job_deadline_seconds(self) -> int:
        """The longest a retrain can take, every step at its hard limit."""
        return self.retrain_time_limit + self.chunk_time_limit

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        out_dir = Path(env.get("MOVIEREC_OUTPUT") or REPO / "output").resolve()
        return cls(
            redis_url=env.get("REDIS_URL") or None,
            database_url=env.get("MOVIEREC_DATABASE_URL") or None,
            data_env=env.get("MOVIEREC_DATA") or None,
            out_dir=out_dir,
            api_token=env.get("MOVIEREC_API_TOKEN") or None,
            retrain_cron=_cron(env.get("MOVIEREC_RETRAIN_CRON") or WEEKLY_SUNDAY_3AM),
            chunk_users=_positive_int(env, "MOVIEREC_CHUNK_USERS", 2000),
            grace_seconds=_positive_int(env, "MOVIEREC_GRACE_SECONDS", 900),
            retrain_time_limit=_positive_int(env, "MOVIEREC_RETRAIN_TIME_LIMIT", 4 * 3600),
            chunk_time_limit=_positive_int(env, "MOVIEREC_CHUNK_TIME_LIMIT", 900),
            store=StoreSettings.from_env(OutputFolder(out_dir).models.path, env),
            keep_versions=_positive_int(env, "MOVIEREC_KEEP_VERSIONS", 3),
            lock_ttl_seconds=_positive_int(env, "MOVIEREC_LOCK_TTL", 60),
        )


@cache
def get_settings() -> Settings:
    """Process-wide settings; tests call `get_settings.cache_clear()` after changing the env."""
    return Settings.from_env()


def get_store() -> VersionStore:
    """The version store the settings name, one per process."""
    from store.versions import open_store

    return open_store(get_settings().store)


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    return env_number(env, name, default, int)


def _cron(expression: str) -> str:
    from celery.schedules import crontab

    try:
        crontab.from_string(expression)
    except (ValueError, IndexError) as error:
        raise SettingsError(
            f"MOVIEREC_RETRAIN_CRON={expression!r} is not 'minute hour day month weekday': {error}"
        ) from None
    return expression
