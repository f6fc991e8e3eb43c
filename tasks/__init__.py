"""Celery: the app, its tasks and beat schedule, and job bookkeeping."""
