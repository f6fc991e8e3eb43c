"""The Celery client of the web tier: it sends jobs and reads their states, within the request's
deadline. Celery's own defaults (no socket timeout, retried publishes) would hold a request for
as long as Redis stays frozen."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.backends.redis import RedisBackend

from cache.redis_client import ClientProfile, connection_options
from cache.settings import Settings
from tasks.celery_app import make_celery

_CONNECTION = "movierec_result_connection"  # the conf key GuardedResultBackend reads


class GuardedResultBackend(RedisBackend):
    """Celery's Redis result backend on the web tier's guarded connections (deadline, breaker)."""

    def __init__(self, app: Celery, url: str | None = None, **kwargs: Any) -> None:
        super().__init__(app=app, url=url or app.conf.result_backend, **kwargs)
        self.connparams.update(app.conf[_CONNECTION])


def job_queue(settings: Settings, profile: ClientProfile) -> Celery:
    app = make_celery(settings)
    app.backend_cls = GuardedResultBackend
    timeouts = {"socket_timeout": profile.timeout, "socket_connect_timeout": profile.timeout}
    app.conf.update(
        {
            _CONNECTION: connection_options(profile),
            "broker_transport_options": app.conf.broker_transport_options
            | timeouts
            | {"retry_on_timeout": False},
            "broker_connection_timeout": profile.timeout,
            "task_publish_retry": False,  # the caller answers 503; a retry is the client's
        }
    )
    return app
