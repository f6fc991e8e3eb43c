"""The folded titles of the live version's movies, searched by the words of a query, forgiving
typos ("godfater", "matrx", "shawshank redemtion").

Built once per version, catalogue size and movie change, per process: a movie added over HTTP
is found at once, a hidden one never, a retitled one by its new title. In process, with
rapidfuzz against the index's own vocabulary, so search goes on while the database is down.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from typing import NamedTuple

from rapidfuzz import fuzz, process

from cache.reader import CacheReader

_NOT_A_WORD = re.compile(r"[\W_]+")
# A misspelt word matches the title words this close to it (rapidfuzz's ratio, 0 to 100):
# "godfater" / "godfather" 94, "matrx" / "matrix" 91, "redemtion" / "redemption" 95.
CLOSE = 80
VARIANTS = 8  # per misspelt word, the closest title words tried


def fold(text: str) -> str:
    """Lower case, accents dropped, punctuation as spaces: "Amélie" matches "amelie"."""
    if not text.isascii():  # most titles are: they skip the slow part
        decomposed = unicodedata.normalize("NFKD", text)
        text = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(_NOT_A_WORD.sub(" ", text.casefold()).split())


class Entry(NamedTuple):
    folded: str  # the title as `fold` leaves it, matched against the query's words
    hit: dict  # what a search answers: movieId, title, genres, cluster


class Titles(NamedTuple):
    entries: list[Entry]  # most rated first
    by_word: dict[str, list[int]]  # a title word -> the entries holding it
    vocabulary: list[str]


class TitleIndex:
    def __init__(self) -> None:
        self._built: tuple[tuple, Titles] = ((), Titles([], {}, []))

    def titles(self, reader: CacheReader) -> Titles:
        model = reader.active()
        key = (model.version, reader.catalog_size(model), reader.changes().epoch)
        built_key, titles = self._built
        if key != built_key:
            movies = sorted(
                reader.all_movies(model).items(),
                key=lambda item: (-(item[1].get("n_ratings") or 0), item[0]),
            )
            titles = build([_entry(movie_id, movie) for movie_id, movie in movies])
            self._built = (key, titles)  # one assignment: safe for threads
        return titles


def build(entries: list[Entry]) -> Titles:
    by_word: defaultdict[str, list[int]] = defaultdict(list)
    for index, entry in enumerate(entries):
        for word in set(entry.folded.split()):
            by_word[word].append(index)
    return Titles(entries, dict(by_word), list(by_word))


def search_titles(titles: Titles, query: str, n: int) -> list[dict]:
    """Titles holding every word of `query`, each as typed or misspelt: those with every word as
    typed first (starting with the whole query, then holding it, then the rest), then those
    with misspelt words, closest first; more rated first within each. A query without a
    letter or digit finds nothing."""
    phrase = fold(query)
    if not phrase:
        return []
    found = [_matches(titles, word) for word in phrase.split()]
    exact = set.intersection(*(word.exact for word in found))
    ranked = _by_closeness(titles, phrase, sorted(exact), n)
    if len(ranked) < n:
        ranked += _misspelt(found, exact)[: n - len(ranked)]
    return [titles.entries[i].hit for i in ranked]


class WordMatch(NamedTuple):
    exact: set[int]  # entries with a title word holding the query word as typed
    close: dict[int, float]  # other entries -> how close their nearest title word is


def _matches(titles: Titles, word: str) -> WordMatch:
    """A query word has no space, and a folded title's words are apart by spaces: looking for
    it in the vocabulary finds what looking in every title would, in a fraction of the time."""
    exact: set[int] = set()
    for holder in (v for v in titles.vocabulary if word in v):
        exact.update(titles.by_word[holder])
    close: dict[int, float] = {}
    if word not in titles.by_word and len(word) >= 3:  # else as typed, or too short to misspell
        variants = process.extract(
            word, titles.vocabulary, scorer=fuzz.ratio, score_cutoff=CLOSE, limit=VARIANTS
        )
        for variant, score, _ in variants:
            for i in titles.by_word[variant]:
                if i not in exact and score > close.get(i, 0.0):
                    close[i] = score
    return WordMatch(exact, close)


def _by_closeness(titles: Titles, phrase: str, ordered: list[int], n: int) -> list[int]:
    """The first `n` of `ordered` (most rated first) by closeness to the whole phrase: those
    starting with it, then those holding it, then the rest."""
    groups: list[list[int]] = [[], [], []]
    for i in ordered:
        folded = titles.entries[i].folded
        group = 0 if folded.startswith(phrase) else 1 if phrase in folded else 2
        if len(groups[group]) < n:
            groups[group].append(i)
        if len(groups[0]) == n:
            break
    return (groups[0] + groups[1] + groups[2])[:n]


def _misspelt(found: list[WordMatch], exact: set[int]) -> list[int]:
    """Entries matching every word, some only by a close variant: closest first, then most
    rated."""
    candidates = set.intersection(*(word.exact | word.close.keys() for word in found)) - exact
    closeness = {
        i: sum(100.0 if i in word.exact else word.close[i] for word in found) for i in candidates
    }
    return sorted(candidates, key=lambda i: (-closeness[i], i))


def _entry(movie_id: int, movie: dict) -> Entry:
    hit = {
        "movieId": movie_id,
        "title": movie.get("title"),
        "genres": movie.get("genres"),
        "cluster": movie.get("cluster"),
    }
    return Entry(fold(movie.get("title") or ""), hit)
