"""The synthetic folder most tests run on exercises what the code paths meet in real releases:
tags, accented UTF-8 titles, ratings spread over the years, light and heavy raters."""

from __future__ import annotations

import pandas as pd

from pipeline.data.synth import ACCENTED_WORDS, MIN_RATINGS_PER_USER


def test_tags_point_at_rated_movies(small_data, small_ratings, small_shape):
    tags = pd.read_csv(small_data / "tags.csv")
    assert len(tags) == small_shape.tags > 100
    rated = small_ratings.set_index(["userId", "movieId"]).index
    assert tags.set_index(["userId", "movieId"]).index.isin(rated).all()


def test_some_titles_are_accented_and_the_first_is(small_movies, known):
    accented = small_movies.loc[~small_movies["title"].map(str.isascii), "title"]
    assert len(accented) > 100
    assert all(accented.str.startswith(word).any() for word in ACCENTED_WORDS)
    assert not known.title.isascii()  # the movie the tests name


def test_ratings_are_spread_over_the_years(small_ratings):
    years = pd.to_datetime(small_ratings["timestamp"], unit="s").dt.year
    assert years.nunique() >= 15
    assert years.value_counts(normalize=True).max() < 0.25  # no year holds most of them


def test_there_are_light_and_heavy_raters(small_ratings):
    per_user = small_ratings.groupby("userId").size()
    assert per_user.min() < MIN_RATINGS_PER_USER + 10  # near MovieLens's minimum
    assert (per_user < 40).sum() >= 20
    assert per_user.max() > 10 * per_user.median() and per_user.max() > 1_000
