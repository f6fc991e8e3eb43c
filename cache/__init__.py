"""The Redis cache: key layout, versions and the pointer flip, writer, reader, lock.

Shared by the Celery tasks (which write) and the web app (which reads); imports only `pipeline`.
"""
