"""Read-only view of the active cached version, for the web app.

Every read resolves the active pointer and reads the version's key in one server-side script,
so a response never mixes two versions, a request after a job reports SUCCESS sees the new
version on every web process, and a user's list still costs one round trip. What never
changes within a version (its metadata, its clusters' genres, movie details) is kept per
process and version, read again only when the version changes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, NamedTuple

import orjson
import redis

from cache import keys, movie_changes
from cache.keys import VersionKeys
from cache.movie_changes import MovieChanges
from cache.reasons import Reasons
from pipeline.clusters.titles import describe
from pipeline.errors import MovierecError
from pipeline.params import PersonalOptions, PipelineParams

DEFAULT_LENGTH = 5  # items in a list when the request does not say
EXEMPLARS = 3  # movies a cluster's description names (pipeline.clusters.names)

# GET the pointer, then GET or HGET one part of that version, and the movie changes' counter:
# {version, value, epoch} or false.
_READ_ACTIVE = """
local version = redis.call('GET', KEYS[1])
if not version then
  return false
end
local key = ARGV[1] .. version .. ':' .. ARGV[2]
local epoch = redis.call('GET', KEYS[2])
if ARGV[3] == 'hget' then
  return {version, redis.call('HGET', key, ARGV[4]), epoch}
end
return {version, redis.call('GET', key), epoch}
"""


class NoActiveVersion(MovierecError, LookupError):
    """Nothing has been published yet (or the active version's metadata is gone)."""


class LengthTooLong(MovierecError, ValueError):
    """More items were asked for than the version's lists hold."""

    def __init__(self, asked: int, depth: int) -> None:
        self.asked, self.depth = asked, depth
        super().__init__(f"n must be an integer from 1 to {depth}, got {asked}")


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

    @cached_property
    def personal(self) -> PersonalOptions | None:
        """The personal recommender's options; None for the favorite-cluster rule."""
        if "parameters" not in self.meta:
            return None
        return PipelineParams.from_metadata(self.meta).personal_options


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
                entries[movie_id] = orjson.loads(raw)
        return [entries.get(movie_id) for movie_id in ids]

    def _start_over(self, version: str) -> dict[int, dict | None]:
        """A fresh, empty store; threads still holding the old one finish with it unharmed."""
        entries: dict[int, dict | None] = {}
        self._store = (version, entries)
        return entries


class ClusterFacts(NamedTuple):
    version: str
    summaries: list[dict]
    labels: dict[int, str]  # cluster -> what the reasons call it: its name, else its top genres


class ClusterMap(NamedTuple):
    version: str  # the version the map was read from
    points: list[list]  # sampled [movieId, x, y, cluster]; empty for a version without a map


class UserEntry(NamedTuple):
    model: ActiveModel
    entry: dict  # the user's cached value, decoded
    length: int  # list items asked for
    changes: MovieChanges


class UserPage(NamedTuple):
    user: dict  # what `user` answers
    recommendations: list[dict]  # what `user_recommendations` answers


class Read(NamedTuple):
    model: ActiveModel
    value: Any  # the raw bytes, None when the key or field is absent
    changes: MovieChanges  # the operator's changes to movies, as of this read


class CacheReader:
    def __init__(self, r: redis.Redis) -> None:
        self.r = r
        self._read_active = r.register_script(_READ_ACTIVE)
        self._lock = threading.Lock()
        self._models: dict[str, ActiveModel] = {}
        self._movie_cache = MovieCache()
        self._cluster_facts = ClusterFacts("", [], {})
        self._changes = movie_changes.NONE

    def ping(self) -> bool:
        return bool(self.r.ping())

    def active(self) -> ActiveModel:
        version = self.r.get(keys.ACTIVE)
        if version is None:
            raise NoActiveVersion("no model version has been published yet")
        return self._model(version.decode())

    def movie(self, movie_id: int) -> dict | None:
        """The movie's details, hidden ones included (`hidden` says so)."""
        model, raw, changes = self._read(keys.MOVIES, movie_id)
        if not raw:
            return None
        found = _movie(movie_id, _changed(movie_id, orjson.loads(raw), changes, model))
        return found | {"hidden": movie_id in changes.hidden}

    def similar_movies(self, movie_id: int, n: int | None) -> list[dict] | None:
        """The n nearest movies of the same cluster; None for an unknown movie."""
        model, raw, changes = self._read(keys.SIMILAR, movie_id)
        length = _length(model, n)
        if raw is None and self._movie_entries(model, [movie_id]) == [None]:
            return None
        place = changes.place(movie_id, model.version)
        if place is not None:  # its genres changed since the version was trained
            entry = {"movies": place.similar, "scores": place.scores}
        else:
            entry = orjson.loads(raw) if raw else {"movies": [], "scores": []}
        kept = _visible(entry["movies"], changes)[:length]
        movies = self._movies(model, [entry["movies"][i] for i in kept], changes)
        for movie, i in zip(movies, kept, strict=True):
            movie["similarity"] = entry["scores"][i]
        return movies

    def user(self, user_id: int) -> dict | None:
        """Favorite cluster (with its name) and how many movies the user rated in each cluster."""
        model, raw, _ = self._read(keys.USERS, user_id)
        return None if raw is None else self._user(model, user_id, orjson.loads(raw))

    def user_recommendations(self, user_id: int, n: int | None) -> list[dict] | None:
        """The user's cached list of unseen movies, each with why it is there; None if unknown."""
        found = self._user_entry(user_id, n)
        return None if found is None else self._recommendations(found)

    def user_page(self, user_id: int, n: int | None) -> UserPage | None:
        """`user` and `user_recommendations` from one read of the entry, for a page showing both."""
        found = self._user_entry(user_id, n)
        if found is None:
            return None
        user = self._user(found.model, user_id, found.entry)
        return UserPage(user, self._recommendations(found))

    def _user_entry(self, user_id: int, n: int | None) -> UserEntry | None:
        """The user's decoded entry and the list length asked for (checked even when the user
        is unknown, so a bad `n` is always a 400)."""
        model, raw, changes = self._read(keys.USERS, user_id)
        length = _length(model, n)
        return None if raw is None else UserEntry(model, orjson.loads(raw), length, changes)

    def _recommendations(self, found: UserEntry) -> list[dict]:
        """The list without hidden movies: the spare ones stored after them move up."""
        model, entry, length, changes = found
        kept = _visible(entry["movies"], changes)[:length]
        movies = self._movies(model, [entry["movies"][i] for i in kept], changes)
        legend = model.meta["sources"]
        personal = model.personal
        first = personal is not None and personal.first_ratings(entry["n_ratings"])
        own = None if personal is None else personal.user_clusters
        reasons = Reasons(entry, self._clusters(model).labels, first, own)
        for movie, i in zip(movies, kept, strict=True):
            movie["score"] = entry["scores"][i]
            movie["source"] = legend[int(entry["sources"][i])]
            movie["reason"] = reasons(movie["cluster"], movie["source"])
        return movies

    def clusters(self, model: ActiveModel | None = None) -> list[dict]:
        """The summaries of `model`'s version (one a page has already read), else the active
        one's, their top movies without hidden ones."""
        if model is None:
            model, _, changes = self._read(keys.META)  # the version and the changes: one trip
        else:
            changes = self._changes  # as of the read that gave the page its model
        return [self._shown(model, s, changes) for s in self._clusters(model).summaries]

    def cluster(self, cluster_id: int, n: int | None) -> dict | None:
        """A cluster's summary with its n best-ranked movies; None for an unknown cluster."""
        model, members, changes = self._read(keys.members_part(cluster_id))
        length = _length(model, n)
        summaries = self._clusters(model).summaries
        summary = next((s for s in summaries if s["cluster"] == cluster_id), None)
        if summary is None:
            return None
        ids = orjson.loads(members) if members else []
        shown = [ids[i] for i in _visible(ids, changes)[:length]]
        shown_summary = self._shown(model, summary, changes)
        return {**shown_summary, "movies": self._movies(model, shown, changes)}

    def cluster_map(self) -> ClusterMap:
        model, raw, _ = self._read(keys.MAP)
        return ClusterMap(model.version, orjson.loads(raw or "[]"))

    def onboarding(self, n: int) -> list[dict]:
        """The movies a new user is asked to rate, each with its cluster's name; the popular
        ones for a version made before there was such a list."""
        model, raw, changes = self._read(keys.ONBOARDING)
        if raw is None:
            raw = self._read(keys.POPULAR).value
        ids = orjson.loads(raw or "[]")
        shown = [ids[i] for i in _visible(ids, changes)[:n]]
        names = {s["cluster"]: s.get("name") for s in self._clusters(model).summaries}
        movies = self._movies(model, shown, changes)
        for movie in movies:
            movie["cluster_name"] = names.get(movie["cluster"])
        return movies

    def popular(self, n: int | None) -> list[dict]:
        model, raw, changes = self._read(keys.POPULAR)
        ids = orjson.loads(raw or "[]")
        shown = [ids[i] for i in _visible(ids, changes)[: _length(model, n)]]
        return self._movies(model, shown, changes)

    def _read(self, part: str, field: int | None = None) -> Read:
        """The active version and one of its values, in one round trip (two when the operator
        changed a movie since this process last looked)."""
        how = ["get"] if field is None else ["hget", field]
        active_keys = [keys.ACTIVE, keys.MOVIE_CHANGES_EPOCH]
        found = self._read_active(keys=active_keys, args=[keys.VERSIONS, part, *how])
        if not found:
            raise NoActiveVersion("no model version has been published yet")
        version, value, epoch = found
        return Read(self._model(version.decode()), value, self._changes_at(epoch))

    def _changes_at(self, epoch: bytes | None) -> MovieChanges:
        """The movie changes as of `epoch`, reread only when it moved."""
        changes = self._changes
        if changes.epoch != epoch:
            changes = self._changes = movie_changes.read_changes(self.r)
        return changes

    def _model(self, version: str) -> ActiveModel:
        """A version's metadata, read once per process: it never changes."""
        model = self._models.get(version)
        if model is not None:
            return model
        meta = self.r.get(VersionKeys(version).meta)
        if meta is None:
            raise NoActiveVersion(f"active version {version} has no cached metadata")
        model = ActiveModel(version, orjson.loads(meta))
        with self._lock:
            self._models = {version: model}  # the previous version's is no longer needed
        return model

    def _clusters(self, model: ActiveModel) -> ClusterFacts:
        """The clusters' summaries, read once per version and process: they never change."""
        facts = self._cluster_facts
        if facts.version != model.version:
            summaries = orjson.loads(self.r.get(model.keys.clusters) or "[]")
            labels = {s["cluster"]: _label(s) for s in summaries}
            facts = self._cluster_facts = ClusterFacts(model.version, summaries, labels)
        return facts

    def _user(self, model: ActiveModel, user_id: int, entry: dict) -> dict:
        found = _user(user_id, entry)
        summaries = self._clusters(model).summaries
        favorite = next((s for s in summaries if s["cluster"] == found["favorite_cluster"]), {})
        found["favorite_cluster_name"] = favorite.get("name")
        found["favorite_cluster_description"] = favorite.get("description")
        return found

    def _shown(self, model: ActiveModel, summary: dict, changes: MovieChanges) -> dict:
        """A summary without hidden movies: not among its top movies, nor in its description,
        which then names the next best-known ones."""
        top = summary.get("top_movies")
        if not top or not changes.hidden or not changes.hidden.intersection(top):
            return summary
        shown = {**summary, "top_movies": [top[i] for i in _visible(top, changes)]}
        if summary.get("description"):
            best = self._movies(model, shown["top_movies"][:EXEMPLARS], changes)
            shown["description"] = describe([m["title"] for m in best if m["title"]])
        return shown

    def _movies(
        self, model: ActiveModel, ids: Sequence[int], changes: MovieChanges = movie_changes.NONE
    ) -> list[dict]:
        """Titles and details for a ranked list of ids, at most one round trip."""
        entries = self._movie_entries(model, ids)
        return [
            _movie(movie_id, _changed(movie_id, entry or {}, changes, model))
            for movie_id, entry in zip(ids, entries, strict=True)
        ]

    def _movie_entries(self, model: ActiveModel, ids: Sequence[int]) -> list[dict | None]:
        def fetch(missing: list[int]) -> list:
            return self.r.hmget(model.keys.movies, missing)

        return self._movie_cache.get_many(model.version, ids, fetch) if ids else []

    def catalog_size(self, model: ActiveModel) -> int:
        """How many movies the version holds: it grows only when one is added over HTTP."""
        return self.r.hlen(model.keys.movies)

    def all_movies(self, model: ActiveModel) -> dict[int, dict]:
        """Every movie of a version but the hidden ones, decoded and as changed, for an index
        built once per version and change (search)."""
        changes = self.changes()
        found = {int(k): orjson.loads(v) for k, v in self.r.hgetall(model.keys.movies).items()}
        return {
            movie_id: _changed(movie_id, entry, changes, model)
            for movie_id, entry in found.items()
            if movie_id not in changes.hidden
        }

    def changes(self) -> MovieChanges:
        """The operator's changes to movies now: one GET, and a reread when they moved."""
        return self._changes_at(self.r.get(keys.MOVIE_CHANGES_EPOCH))


def _length(model: ActiveModel, n: int | None) -> int:
    """How many items a list answer holds: `n`, or the default, never more than the depth."""
    if n is None:
        return min(DEFAULT_LENGTH, model.depth)
    if n > model.depth:
        raise LengthTooLong(n, model.depth)
    return n


def _user(user_id: int, entry: dict) -> dict:
    found = {
        "userId": user_id,
        "favorite_cluster": entry["favorite_cluster"],
        "n_ratings": entry["n_ratings"],
        "cluster_counts": {str(c): n for c, n in enumerate(entry["counts"])},
    }
    if "liking" in entry:
        found["cluster_liking"] = {str(c): w for c, w in enumerate(entry["liking"])}
    return found


def _visible(ids: Sequence[int], changes: MovieChanges) -> list[int]:
    """The places in `ids` of the movies not hidden."""
    hidden = changes.hidden
    return [i for i, movie_id in enumerate(ids) if movie_id not in hidden]


def _label(summary: dict) -> str:
    genres = ", ".join(g["genre"] for g in summary.get("top_genres", [])[:3])
    if summary.get("name"):
        return f'"{summary["name"]}"'
    return f"({genres})" if genres else "(no dominant genre)"


def _changed(movie_id: int, entry: dict, changes: MovieChanges, model: ActiveModel) -> dict:
    """The entry with the operator's title and genres, and the cluster they give the movie in
    this version (until a retrain on them)."""
    change = changes.changes.get(movie_id)
    if change is None:
        return entry
    changed = {**entry, "title": change["title"], "genres": change["genres"]}
    place = changes.place(movie_id, model.version)
    if place is not None:
        changed["cluster"] = place.cluster
    return changed


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
