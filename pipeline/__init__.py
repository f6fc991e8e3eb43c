"""Offline half of movierec: MovieLens in, clusters and recommendation lists out.

Pure data and ML; nothing here talks to Redis, Celery or Flask.
"""
