"""The reader's per-process movie cache: hits never fetch, misses are not remembered, and
no entry of another version is ever served."""

from __future__ import annotations

import json

from cache.reader import MovieCache


class RecordingFetch:
    """Answers like HMGET over a fixed movies hash and records which ids were asked for."""

    def __init__(self, titles: dict[int, str]) -> None:
        self.titles = titles
        self.calls: list[list[int]] = []

    def __call__(self, ids: list[int]) -> list[bytes | None]:
        self.calls.append(ids)
        return [
            json.dumps({"title": self.titles[i]}).encode() if i in self.titles else None
            for i in ids
        ]


def titles(entries: list[dict | None]) -> list[str | None]:
    return [entry["title"] if entry else None for entry in entries]


def test_hits_do_not_fetch_and_misses_are_fetched_together():
    cache, fetch = MovieCache(), RecordingFetch({1: "a", 2: "b", 3: "c"})
    assert titles(cache.get_many("v1", [2, 1], fetch)) == ["b", "a"]
    assert titles(cache.get_many("v1", [1, 3, 2, 9], fetch)) == ["a", "c", "b", None]
    assert titles(cache.get_many("v1", [9, 3], fetch)) == [None, "c"]
    assert fetch.calls == [[2, 1], [3, 9], [9]]  # a miss is asked for again


def test_a_movie_added_after_a_miss_is_found():
    cache, fetch = MovieCache(), RecordingFetch({1: "a"})
    assert titles(cache.get_many("v1", [7], fetch)) == [None]
    fetch.titles[7] = "added over HTTP"
    assert titles(cache.get_many("v1", [7, 1], fetch)) == ["added over HTTP", "a"]


def test_another_version_never_sees_the_old_entries():
    cache = MovieCache()
    cache.get_many("v1", [1], RecordingFetch({1: "old"}))
    fetch = RecordingFetch({1: "new"})
    assert titles(cache.get_many("v2", [1], fetch)) == ["new"]
    assert fetch.calls == [[1]]


def test_a_full_cache_starts_over_and_still_answers_right():
    cache, fetch = MovieCache(max_entries=3), RecordingFetch({i: str(i) for i in range(10)})
    cache.get_many("v1", [1, 2], fetch)
    assert titles(cache.get_many("v1", [1, 3, 4], fetch)) == ["1", "3", "4"]
    assert titles(cache.get_many("v1", [3], fetch)) == ["3"]
    assert titles(cache.get_many("v1", [2], fetch)) == ["2"]
    assert fetch.calls == [[1, 2], [1, 3, 4], [2]]
