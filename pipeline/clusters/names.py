"""Short, distinct names for clusters, from what sets each apart rather than what is common:
genres by lift (their share in the cluster over their share in the catalogue), the typical
decade, the tags users give its movies, and its best-known movies as exemplars.

A name is made of a cluster's three leading descriptors, chosen so that any two clusters of a
version share at most one of them: "1990s · Crime & Thriller", "Animation & Children ·
disney". The description names exemplars: "like Pulp Fiction, Fargo and Se7en".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
import pandas as pd

from pipeline.clusters.titles import describe

LEADING = 3  # descriptors in a name
EXEMPLARS = 3
MIN_SHARE = 0.15  # of a cluster's movies, for a genre, a decade or a tag to describe it
MIN_TAGGED = 3  # movies of the cluster with the tag
_YEAR = re.compile(r"\((\d{4})\)\s*$")
MIN_TAGGERS = 2  # distinct users who gave a tag, anywhere
STRONG = 2.0  # the lift from which how known or liked a cluster is names it
KIND_LIMITS = {"genre": 2, "decade": 1, "tag": 1, "standing": 1}


class Descriptor(NamedTuple):
    kind: str  # "genre", "decade", "tag", "standing"
    text: str
    lift: float  # share in the cluster over share in the catalogue


class ClusterName(NamedTuple):
    name: str
    description: str
    descriptors: list[str]  # the leading ones, as the name shows them


def name_clusters(
    movies: pd.DataFrame,
    tags: pd.DataFrame,
    k: int,
    kept: Mapping[int, ClusterName] | None = None,
) -> list[ClusterName]:
    """A name per cluster 0..k-1. `kept`: names carried over from the previous version for the
    clusters that match one of it (pipeline.clusters.alignment); the others get new names that
    stay apart from them."""
    kept = kept or {}
    catalogue = Catalogue.of(movies, tags)
    ranked = [descriptors(catalogue, movies["cluster"].to_numpy() == c) for c in range(k)]
    chosen: dict[int, list[Descriptor]] = {}
    taken: list[set[str]] = [set(name.descriptors) for name in kept.values()]
    for c in sorted(range(k), key=lambda c: -int((movies["cluster"] == c).sum())):
        if c in kept:
            continue
        chosen[c] = _apart(ranked[c], taken)
        taken.append({d.text for d in chosen[c]})
    return [kept[c] if c in kept else _name(chosen[c], exemplars(movies, c)) for c in range(k)]


class Catalogue(NamedTuple):
    """What every cluster is measured against, computed once for all of them."""

    genres: pd.DataFrame  # movies x genres, 0/1
    decades: pd.Series  # movie position -> decade, for the titles that give a year
    movie_ids: np.ndarray
    tagged: pd.DataFrame  # (movieId, filtered) of the tags several users gave, once each
    n_ratings: np.ndarray
    avg_rating: np.ndarray

    @classmethod
    def of(cls, movies: pd.DataFrame, tags: pd.DataFrame) -> Catalogue:
        genres = movies["genres"].str.get_dummies("|")
        years = movies["title"].str.extract(_YEAR, expand=False).astype(float)
        return cls(
            genres.drop(columns=["(no genres listed)"], errors="ignore"),
            (years // 10 * 10).dropna().astype(int),
            movies["movieId"].to_numpy(),
            _shared_tags(tags),
            movies["n_ratings"].to_numpy(float),
            movies["avg_rating"].to_numpy(float),
        )


def descriptors(catalogue: Catalogue, members: np.ndarray) -> list[Descriptor]:
    """Everything that could describe the cluster of `members` (a mask over the catalogue's
    movies), most distinctive first."""
    found = _genres(catalogue, members) + _decades(catalogue, members) + _tags(catalogue, members)
    standing = _standing(catalogue, members)
    found += [d for d in standing if d.lift >= STRONG]
    found.sort(key=lambda d: -d.lift)
    return found + standing + [Descriptor("standing", "assorted", 1.0)]


def exemplars(movies: pd.DataFrame, cluster: int) -> list[str]:
    """The titles of the cluster's best-known movies (most rated)."""
    members = movies[movies["cluster"] == cluster]
    best = members.sort_values(["n_ratings", "movieId"], ascending=[False, True]).head(EXEMPLARS)
    return best["title"].tolist()


def _apart(ranked: list[Descriptor], taken: list[set[str]]) -> list[Descriptor]:
    """The first LEADING descriptors, skipping any that would give this cluster two in common
    with one already named, and keeping to KIND_LIMITS so that names read well (a genre pair,
    one decade, one tag, one standing)."""
    picked: list[Descriptor] = []
    for candidate in ranked:
        texts = {d.text for d in picked} | {candidate.text}
        if any(len(texts & other) > 1 for other in taken):
            continue
        if sum(d.kind == candidate.kind for d in picked) >= KIND_LIMITS[candidate.kind]:
            continue
        picked.append(candidate)
        if len(picked) == LEADING:
            break
    return picked


def _name(picked: list[Descriptor], titles: list[str]) -> ClusterName:
    """Decade first, then the genres joined, then tags and standing: "1990s · Crime & Thriller"."""
    genres = " & ".join(d.text for d in picked if d.kind == "genre")
    decades = [d.text for d in picked if d.kind == "decade"]
    rest = [d.text for d in picked if d.kind in ("tag", "standing")]
    name = " · ".join([*decades, *([genres] if genres else []), *rest])
    return ClusterName(name, describe(titles), [d.text for d in picked])


def _genres(catalogue: Catalogue, members: np.ndarray) -> list[Descriptor]:
    one_hot = catalogue.genres
    inside, overall = one_hot[members].mean(), one_hot.mean()
    return [
        Descriptor("genre", genre, float(inside[genre] / overall[genre]))
        for genre in one_hot.columns
        if inside[genre] >= MIN_SHARE and overall[genre] > 0
    ]


def _decades(catalogue: Catalogue, members: np.ndarray) -> list[Descriptor]:
    decade = catalogue.decades
    if decade.empty:
        return []
    inside = decade[members[decade.index]].value_counts(normalize=True)
    overall = decade.value_counts(normalize=True)
    return [
        Descriptor("decade", f"{d}s", float(share / overall[d]))
        for d, share in inside.items()
        if share >= MIN_SHARE
    ]


def _shared_tags(tags: pd.DataFrame) -> pd.DataFrame:
    """Tags that several users gave: one user's bookkeeping ("in netflix queue") says nothing
    of the movies."""
    if tags.empty:
        return pd.DataFrame(columns=["movieId", "filtered"])
    users = tags.groupby("filtered")["userId"].nunique()
    shared = tags[tags["filtered"].isin(users.index[users >= MIN_TAGGERS])]
    return shared[["movieId", "filtered"]].drop_duplicates()


def _tags(catalogue: Catalogue, members: np.ndarray) -> list[Descriptor]:
    tagged = catalogue.tagged
    if tagged.empty:
        return []
    ids = set(catalogue.movie_ids[members].tolist())
    inside = tagged[tagged["movieId"].isin(ids)]["filtered"].value_counts()
    overall = tagged["filtered"].value_counts()
    size, movies = max(len(ids), 1), max(len(catalogue.movie_ids), 1)
    return [
        Descriptor("tag", tag, float((n / size) / (overall[tag] / movies)))
        for tag, n in inside.items()
        if n >= MIN_TAGGED and n / max(inside.sum(), 1) >= MIN_SHARE / 3
    ]


def _standing(catalogue: Catalogue, members: np.ndarray) -> list[Descriptor]:
    """How known and how liked the cluster's movies are, beside the catalogue: descriptors of
    their own when strong (lift STRONG and up), else last resorts."""
    if not members.any():
        return []
    n, rating = catalogue.n_ratings, catalogue.avg_rating
    known = float(np.nanmedian(n[members]) / max(np.nanmedian(n), 1.0))
    rated = rating[members][~np.isnan(rating[members])]
    liked = float(rated.mean() - np.nanmean(rating)) if rated.size else 0.0
    return [
        Descriptor("standing", "widely seen" if known >= 1 else "lesser known", known),
        Descriptor("standing", "acclaimed" if liked >= 0 else "poorly rated", 1 + 4 * abs(liked)),
    ]
