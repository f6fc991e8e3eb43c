"""Failures of the service's own processes, reported as one line by the command line."""

from __future__ import annotations

from pipeline.errors import MovierecError


class ServiceError(MovierecError):
    """A process of the service could not start or stopped; the message says which and why."""


class WaitTimeout(ServiceError, TimeoutError):
    """Something the service waited for did not happen in time."""
