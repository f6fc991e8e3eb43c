"""Movies changed by the operator after a version was trained: hidden, retitled, or given other
genres (and so, possibly, another cluster). Versions are immutable, so the changes live beside
them in Redis and the reader applies them to whatever version is live: a retrain running
meanwhile does not undo them when it publishes, nor does a rollback.

PostgreSQL is the system of record; these keys are its copy for the readers, rewritten whole
for a movie at each change (a retry writes the same thing again).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import orjson
import redis

from cache import keys


class Place(NamedTuple):
    """Where a changed movie sits in one version: its cluster and its similar movies."""

    version: str
    cluster: int
    similar: list[int]
    scores: list[float]


class MovieChanges(NamedTuple):
    epoch: bytes | None  # None: nothing was ever changed
    changes: Mapping[int, dict]  # movieId -> {hidden, title, genres}
    places: Mapping[int, Place]
    hidden: frozenset[int]  # of `changes`, kept apart: every list is filtered by it

    def place(self, movie_id: int, version: str) -> Place | None:
        found = self.places.get(movie_id)
        return found if found is not None and found.version == version else None


NONE = MovieChanges(None, {}, {}, frozenset())


def read_changes(r: redis.Redis) -> MovieChanges:
    pipe = r.pipeline(transaction=True)
    pipe.get(keys.MOVIE_CHANGES_EPOCH)
    pipe.hgetall(keys.MOVIE_CHANGES)
    pipe.hgetall(keys.MOVIE_PLACES)
    epoch, raw_changes, raw_places = pipe.execute()
    changes = {int(m): orjson.loads(v) for m, v in raw_changes.items()}
    return MovieChanges(
        epoch,
        changes,
        {int(m): Place(*orjson.loads(v)) for m, v in raw_places.items()},
        frozenset(m for m, change in changes.items() if change.get("hidden")),
    )


def write_change(r: redis.Redis, movie_id: int, hidden: bool, title: str, genres: str) -> None:
    """The movie's state as the database now holds it."""
    entry = {"hidden": hidden, "title": title, "genres": genres}
    pipe = r.pipeline(transaction=True)
    pipe.hset(keys.MOVIE_CHANGES, movie_id, orjson.dumps(entry))
    pipe.incr(keys.MOVIE_CHANGES_EPOCH)
    pipe.execute()


def write_place(
    r: redis.Redis, movie_id: int, version: str, cluster: int, similar: Sequence[tuple[int, float]]
) -> None:
    place = Place(version, cluster, [m for m, _ in similar], [s for _, s in similar])
    pipe = r.pipeline(transaction=True)
    pipe.hset(keys.MOVIE_PLACES, movie_id, orjson.dumps(list(place)))
    pipe.incr(keys.MOVIE_CHANGES_EPOCH)
    pipe.execute()
