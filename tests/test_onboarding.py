"""GET /onboarding: movies for a new user to rate, from every cluster in turn."""

from __future__ import annotations

import fakeredis
import numpy as np
import pandas as pd
import pytest

from cache.movie_changes import write_change
from pipeline.lists.onboarding import onboarding_list
from tests.test_web_api import TOKEN, RecordingCelery
from web import create_app


@pytest.fixture
def r(small_cache) -> fakeredis.FakeRedis:
    return small_cache


@pytest.fixture
def client(r):
    return create_app({"REDIS": r, "API_TOKEN": TOKEN, "CELERY": RecordingCelery()}).test_client()


def test_the_first_movies_come_one_from_each_cluster_with_its_name(client, small_run):
    summaries = client.get("/clusters").get_json()
    shown = client.get("/onboarding").get_json()
    assert len(shown) == 10  # the default
    offered = [m["cluster"] for m in client.get("/onboarding?n=50").get_json()]
    turn = len(set(offered))  # clusters with a well-known movie to offer: most, here
    assert turn >= len(summaries) - 2
    assert len(set(offered[:turn])) == turn  # one from each before any second one
    names = {s["cluster"]: s["name"] for s in summaries}
    assert all(m["cluster_name"] == names[m["cluster"]] for m in shown)
    assert len(client.get("/onboarding?n=50").get_json()) == 50
    assert client.get("/onboarding?n=51").status_code == 400
    assert client.get("/onboarding?n=0").status_code == 400


def test_a_hidden_movie_is_never_offered(client, r):
    first = client.get("/onboarding?n=3").get_json()
    write_change(r, first[0]["movieId"], True, first[0]["title"], first[0]["genres"])
    again = client.get("/onboarding?n=3").get_json()
    assert first[0]["movieId"] not in [m["movieId"] for m in again] and len(again) == 3


def test_the_list_prefers_known_divisive_movies_over_the_most_liked():
    movies = pd.DataFrame(
        {"movieId": [1, 2, 3, 4], "cluster": [0, 0, 1, 1], "n_ratings": [10, 10, 10, 2]}
    )
    ratings = pd.DataFrame(
        {
            "movieId": [1] * 10 + [2] * 10 + [3] * 10 + [4] * 2,
            "rating": [5.0] * 10 + [1.0, 5.0] * 5 + [3.0, 4.0] * 5 + [1.0, 5.0],
        }
    )
    chosen = onboarding_list(movies, ratings, 4)
    assert chosen["movieId"].tolist()[:2] == [2, 3]  # divisive 2 beats unanimous 1
    assert np.array_equal(chosen["rank"], np.arange(1, len(chosen) + 1))
