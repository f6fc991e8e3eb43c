"""MovieLens genre strings, '|'-joined: one tidy form for files and for movies added over HTTP."""

from __future__ import annotations

NO_GENRES = "(no genres listed)"


def tidy_genres(text: str) -> str:
    """Tokens trimmed, blanks and the no-genre marker dropped, repeats removed, order kept."""
    tokens = (t.strip() for t in text.split("|"))
    return "|".join(dict.fromkeys(t for t in tokens if t and t != NO_GENRES))
