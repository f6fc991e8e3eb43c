"""The Celery application: Redis broker and result backend, JSON only, settings for long tasks.

Importing this module is cheap (no pandas, no pipeline): the web process uses it to send tasks
by name and read their state, while only workers import the task modules listed in `include`.
"""

from __future__ import annotations

from celery import Celery
from celery.schedules import crontab

from cache.settings import Settings, get_settings

TASK_RETRAIN = "movierec.retrain"
TASK_USERS_CHUNK = "movierec.users_chunk"
TASK_PUBLISH = "movierec.publish"
TASK_RELEASE_LOCK = "movierec.release_retrain_lock"
TASK_REFRESH_USER = "movierec.refresh_user"
TASK_CLEANUP = "movierec.cleanup"
TASK_REFRESH_PENDING = "movierec.refresh_pending"
TASK_PLACE_MOVIE = "movierec.place_movie"

RESULT_TTL_SECONDS = 7 * 24 * 3600
CLEANUP_EVERY_SECONDS = 600.0
REFRESH_SWEEP_EVERY_SECONDS = 30.0


def celery_config(settings: Settings) -> dict:
    # An unacknowledged message is handed to another worker after the visibility timeout, so it
    # must outlast the longest task or a running retrain would start a second time.
    visibility_timeout = settings.job_deadline_seconds + 600
    return {
        "broker_url": settings.broker_url,
        "result_backend": settings.broker_url,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_track_started": True,
        "result_extended": True,
        "result_expires": RESULT_TTL_SECONDS,
        "broker_transport_options": {"visibility_timeout": visibility_timeout},
        "result_backend_transport_options": {"visibility_timeout": visibility_timeout},
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": 30,
        "timezone": "UTC",
        "enable_utc": True,
        "beat_schedule": beat_schedule(settings),
        # Task events, and the sent one from whoever queues a task, let Celery Flower follow jobs.
        "worker_send_task_events": True,
        "task_send_sent_event": True,
    }


def beat_schedule(settings: Settings) -> dict:
    return {
        "retrain": {"task": TASK_RETRAIN, "schedule": crontab.from_string(settings.retrain_cron)},
        "cleanup-versions": {"task": TASK_CLEANUP, "schedule": CLEANUP_EVERY_SECONDS},
        "refresh-pending": {"task": TASK_REFRESH_PENDING, "schedule": REFRESH_SWEEP_EVERY_SECONDS},
    }


def time_limits(hard_limit: int) -> dict[str, int]:
    """Task options: the hard limit, and a soft one a tenth (at least 5 s) before it, which
    leaves the task time to clean up after SoftTimeLimitExceeded."""
    soft = max(1, hard_limit - max(5, hard_limit // 10))
    return {"time_limit": hard_limit, "soft_time_limit": soft}


def make_celery(settings: Settings) -> Celery:
    # Imported by workers and beat only; tasks.monitoring holds signal receivers, not tasks.
    modules = [
        *("tasks.retrain", "tasks.refresh", "tasks.placement", "tasks.cleanup"),
        "tasks.monitoring",
    ]
    app = Celery("movierec", include=modules)
    app.conf.update(celery_config(settings))
    return app


celery_app = make_celery(get_settings())
