"""Movie titles as people say them, and a cluster's description from its exemplars: no pandas,
so the web tier can say them too."""

from __future__ import annotations

import re

_TRAILING = re.compile(r"(\s*\([^()]*\))+\s*$")  # the year, and alternative titles
_ARTICLES = ("The", "A", "An", "Les", "La", "Le", "L'", "Il", "Das", "Der", "Die", "El")


def spoken_title(title: str) -> str:
    """ "Matrix, The (1999)" -> "The Matrix"; "Trial, The (Procès, Le) (1962)" -> "The Trial"."""
    bare = _TRAILING.sub("", title).strip()
    for article in _ARTICLES:
        suffix = f", {article}"
        if bare.endswith(suffix):
            return f"{article} {bare[: -len(suffix)]}"
    return bare


def describe(titles: list[str]) -> str:
    """ "like A, B and C" of a cluster's best-known movies (titles as stored)."""
    spoken = [spoken_title(title) for title in titles]
    if not spoken:
        return "no movie to show yet"
    listed = spoken[0] if len(spoken) == 1 else f"{', '.join(spoken[:-1])} and {spoken[-1]}"
    return f"like {listed}"
