"""Read-only view of the active cached version, for the web app.

Each call resolves the active version once and reads only that version's keys, so a response
never mixes two versions even while a retrain flips the pointer. The pointer (and the version's
metadata) is remembered for `pointer_ttl` seconds: retired versions stay readable for the grace
period, far longer than that. Movie details are remembered per version too (`MovieCache`), so a
list costs one round trip for its ids and none for its titles.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import redis

from cache import keys
from cache.keys import VersionKeys
from pipeline.errors import MovierecError


class NoActiveVersion(MovierecError, LookupError):
    """Nothing has been published yet (or the active version's metadata is gone)."""


@dataclass(frozen=True)
class ActiveModel:
    version: str
    meta: dict

    @property
    def keys(self) -> VersionKeys:
        return VersionKeys(self.version)

    @property
    def depth(self) -> int:
        return int(self.meta["depth"])


class MovieCache:
    """Decoded movie entries of one version, shared by the threads of a process.

    Safe to keep because a version's movies hash is complete before its metadata is written and
    its entries never change afterwards (a movie added over HTTP only adds one); lists repeat
    the same top movies, so a bounded cache hits almost always. Entries of an older version are
    dropped as soon as a newer one is asked for.
    """

    def __init__(self, max_entries: int = 20_000) -> None:
        self.max_entries = max_entries
        self._store: tuple[str, dict[int, dict | None]] = ("", {})

    def get_many(
        self, version: str, ids: Sequence[int], fetch: Callable[[list[int]], list]
    ) -> list[dict | None]:
        """Entries in the order of `ids` (None for unknown movies); misses in one `fetch` call."""
        cached_version, entries = self._store
        if cached_version != version:
            entries = self._start_over(version)
        missing = [movie_id for movie_id in ids if movie_id not in entries]
        if missing and len(entries) + len(missing) > self.max_entries:
            entries, missing = self._start_over(version), list(ids)
        fetched = dict(zip(missing, fetch(missing), strict=True)) if missing else {}
        for movie_id, raw in fetched.items():
            if raw:  # a miss is not kept: a movie added over HTTP appears at once
                entries[movie_id] = json.loads(raw)
        return [entries.get(movie_id) for movie_id in ids]

    def _start_over(self, version: str) -> dict[int, dict | None]:
        """A fresh, empty store; threads still holding the old one finish with it unharmed."""
        entries: dict[int, dict | None] = {}
        self._store = (version, entries)
        return entries


class CacheReader:
    def __init__(
        self,
        r: redis.Redis,
        pointer_ttl: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.r = r
        self.pointer_ttl = pointer_ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._active: tuple[float, ActiveModel] | None = None
        self._movie_cache = MovieCache()
        self._genres: tuple[str, dict[int, list[str]]] = ("", {})

    def ping(self) -> bool:
        return bool(self.r.ping())

    def active(self) -> ActiveModel:
        cached = self._active
        if cached and self.clock() < cached[0]:
            return cached[1]
        model = self._load_active()
        with self._lock:
            self._active = (self.clock() + self.pointer_ttl, model)
        return model

    def movie(self, movie_id: int) -> dict | None:
        [entry] = self._movie_entries(self.active(), [movie_id])
        return _movie(movie_id, entry) if entry is not None else None

    def similar_movies(self, movie_id: int, n: int) -> list[dict] | None:
        """The n nearest movies of the same cluster; None for an unknown movie."""
        model = self.active()
        pipe = self.r.pipeline(transaction=False)
        pipe.hexists(model.keys.movies, movie_id)
        pipe.hget(model.keys.similar, movie_id)
        known, raw = pipe.execute()
        if not known:
            return None
        entry = json.loads(raw) if raw else {"movies": [], "scores": []}
        ids = entry["movies"][:n]
        movies = self._movies(model, ids)
        for movie, similarity in zip(movies, entry["scores"], strict=False):
            movie["similarity"] = similarity
        return movies

    def user(self, user_id: int) -> dict | None:
        """Favorite cluster and how many movies the user rated in each cluster."""
        entry = self._user_entry(self.active(), user_id)
        if entry is None:
            return None
        found = {
            "userId": user_id,
            "favorite_cluster": entry["favorite_cluster"],
            "n_ratings": entry["n_ratings"],
            "cluster_counts": {str(c): n for c, n in enumerate(entry["counts"])},
        }
        if "liking" in entry:
            found["cluster_liking"] = {str(c): w for c, w in enumerate(entry["liking"])}
        return found

    def user_recommendations(self, user_id: int, n: int) -> list[dict] | None:
        """The user's cached list of unseen movies, each with why it is there; None if unknown."""
        model = self.active()
        entry = self._user_entry(model, user_id)
        if entry is None:
            return None
        movies = self._movies(model, entry["movies"][:n])
        legend = model.meta["sources"]
        genres = self._cluster_genres(model)
        for movie, score, code in zip(movies, entry["scores"], entry["sources"], strict=False):
            movie["score"] = score
            movie["source"] = legend[int(code)]
            movie["reason"] = explain(movie["cluster"], movie["source"], entry, genres)
        return movies

    def clusters(self) -> list[dict]:
        model = self.active()
        return json.loads(self.r.get(model.keys.clusters) or "[]")

    def cluster(self, cluster_id: int, n: int) -> dict | None:
        """A cluster's summary with its n best-ranked movies; None for an unknown cluster."""
        model = self.active()
        pipe = self.r.pipeline(transaction=False)
        pipe.get(model.keys.clusters)
        pipe.get(model.keys.members(cluster_id))
        summaries, members = pipe.execute()
        summary = next(
            (s for s in json.loads(summaries or "[]") if s["cluster"] == cluster_id), None
        )
        if summary is None:
            return None
        ids = json.loads(members)[:n] if members else []
        return {**summary, "movies": self._movies(model, ids)}

    def popular(self, n: int) -> list[dict]:
        model = self.active()
        ids = json.loads(self.r.get(model.keys.popular) or "[]")[:n]
        return self._movies(model, ids)

    def _load_active(self) -> ActiveModel:
        version = self.r.get(keys.ACTIVE)
        if version is None:
            raise NoActiveVersion("no model version has been published yet")
        model_keys = VersionKeys(version.decode())
        meta = self.r.get(model_keys.meta)
        if meta is None:
            raise NoActiveVersion(f"active version {model_keys.version} has no cached metadata")
        return ActiveModel(model_keys.version, json.loads(meta))

    def _cluster_genres(self, model: ActiveModel) -> dict[int, list[str]]:
        """Each cluster's leading genres, read once per version: summaries never change."""
        cached_version, genres = self._genres
        if cached_version != model.version:
            summaries = json.loads(self.r.get(model.keys.clusters) or "[]")
            genres = {s["cluster"]: [g["genre"] for g in s["top_genres"]] for s in summaries}
            self._genres = (model.version, genres)
        return genres

    def _user_entry(self, model: ActiveModel, user_id: int) -> dict | None:
        raw = self.r.hget(model.keys.users, user_id)
        return json.loads(raw) if raw else None

    def _movies(self, model: ActiveModel, ids: Sequence[int]) -> list[dict]:
        """Titles and details for a ranked list of ids, at most one round trip."""
        entries = self._movie_entries(model, ids)
        return [_movie(movie_id, entry or {}) for movie_id, entry in zip(ids, entries, strict=True)]

    def _movie_entries(self, model: ActiveModel, ids: Sequence[int]) -> list[dict | None]:
        def fetch(missing: list[int]) -> list:
            return self.r.hmget(model.keys.movies, missing)

        return self._movie_cache.get_many(model.version, ids, fetch) if ids else []


def _movie(movie_id: int, entry: dict) -> dict:
    return {
        "movieId": movie_id,
        "title": entry.get("title"),
        "genres": entry.get("genres"),
        "cluster": entry.get("cluster"),
        "score": entry.get("score"),
        "n_ratings": entry.get("n_ratings"),
        "avg_rating": entry.get("avg_rating"),
    }


ORDINALS = ("", "top", "second", "third")


def explain(cluster: int | None, source: str, user: dict, genres: dict[int, list[str]]) -> str:
    """Why a movie is on a user's list: which of the user's clusters it came from (ranked the
    way the recommender ranked them) and what that cluster is about."""
    if source != "cluster" or cluster is None:
        return "popular with everyone: your clusters have no unseen movies left"
    liking = user.get("liking")
    weights = liking or user["counts"]
    rank = 1 + sum(
        w > weights[cluster] or (w == weights[cluster] and c < cluster)
        for c, w in enumerate(weights)
    )
    which = ORDINALS[rank] if rank < len(ORDINALS) else f"number {rank}"
    basis = "by how you rated its movies" if liking else "by how many of its movies you rated"
    about = ", ".join(genres.get(cluster, [])[:3]) or "no dominant genre"
    return f"from cluster {cluster} ({about}), your {which} cluster {basis}"
