"""Title search over the active version's movies, for API clients and the dashboard."""

from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple

from flask import Blueprint, jsonify, request

from cache.reader import CacheReader
from web.errors import ApiError
from web.params import query_int
from web.state import cache, titles

bp = Blueprint("search", __name__)
MAX_QUERY = 200
DEFAULT_HITS, MAX_HITS = 10, 50
_NOT_A_WORD = re.compile(r"[\W_]+")


class Entry(NamedTuple):
    folded: str  # the title as `fold` leaves it, matched against the query's words
    hit: dict  # what a search answers: movieId, title, genres, cluster


def fold(text: str) -> str:
    """Lower case, accents dropped, punctuation as spaces: "Amélie" matches "amelie"."""
    if not text.isascii():  # most titles are: they skip the slow part
        decomposed = unicodedata.normalize("NFKD", text)
        text = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(_NOT_A_WORD.sub(" ", text.casefold()).split())


class TitleIndex:
    """The folded titles of one version's movies, most rated first, built once per version and
    process: rebuilt when the version changes or its catalogue grows (a movie added over HTTP
    is found at once), which one HLEN per search tells."""

    def __init__(self) -> None:
        self._built: tuple[str, int, list[Entry]] = ("", 0, [])

    def entries(self, reader: CacheReader) -> list[Entry]:
        model = reader.active()
        size = reader.catalog_size(model)
        version, built_size, entries = self._built
        if (version, built_size) != (model.version, size):
            movies = sorted(
                reader.all_movies(model).items(),
                key=lambda item: (-(item[1].get("n_ratings") or 0), item[0]),
            )
            entries = [_entry(movie_id, movie) for movie_id, movie in movies]
            self._built = (model.version, size, entries)  # one assignment: safe for threads
        return entries


def _entry(movie_id: int, movie: dict) -> Entry:
    hit = {
        "movieId": movie_id,
        "title": movie.get("title"),
        "genres": movie.get("genres"),
        "cluster": movie.get("cluster"),
    }
    return Entry(fold(movie.get("title") or ""), hit)


def search_movies(query: str, n: int) -> list[dict]:
    """Titles holding every word of `query`, case and accents aside: those starting with the
    whole query first, then those holding it, then the rest, each group most rated first. A
    query without a letter or digit finds nothing."""
    phrase = fold(query)
    if not phrase:
        return []
    words = phrase.split()
    entries = titles().entries(cache())
    hits = [entry for entry in entries if all(word in entry.folded for word in words)]
    hits.sort(key=lambda entry: _closeness(entry.folded, phrase))  # stable: popularity within
    return [entry.hit for entry in hits[:n]]


def _closeness(title: str, phrase: str) -> int:
    if title.startswith(phrase):
        return 0
    return 1 if phrase in title else 2


@bp.get("/search")
def search():
    query = request.args.get("q", "")
    if not 1 <= len(query) <= MAX_QUERY:
        raise ApiError(400, f"q must be 1 to {MAX_QUERY} characters, got {len(query)}")
    return jsonify(search_movies(query, query_int("n", 1, MAX_HITS, DEFAULT_HITS)))
