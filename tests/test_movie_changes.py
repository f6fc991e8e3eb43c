"""PATCH /movies/<id> over a real PostgreSQL and a cache of a real version in fakeredis: hidden
movies leave every list at once and come back; titles and genres change; bad bodies are 400."""

from __future__ import annotations

import fakeredis
import pytest

from cache.movie_changes import read_changes, write_place
from pipeline.lists.placement import place_movie
from pipeline.params import PipelineParams
from tasks.celery_app import TASK_PLACE_MOVIE
from tests.test_web_api import TOKEN, RecordingCelery, auth
from tests.test_web_writes import database  # noqa: F401  (fixture)
from web import create_app

pytestmark = pytest.mark.integration


@pytest.fixture
def r(small_cache) -> fakeredis.FakeRedis:
    return small_cache


@pytest.fixture
def broker() -> RecordingCelery:
    return RecordingCelery()


@pytest.fixture
def client(r, database, broker):  # noqa: F811
    config = {"REDIS": r, "API_TOKEN": TOKEN, "CELERY": broker}
    return create_app(config | {"DATABASE": database}).test_client()


def patch(client, movie: int, body: object):
    return client.patch(f"/movies/{movie}", json=body, headers=auth())


def ids(answer) -> list[int]:
    return [movie["movieId"] for movie in answer.get_json()]


def everywhere(client, movie: int, cluster: int) -> dict[str, bool]:
    """Whether each list shows the movie."""
    listed = {
        "user": ids(client.get("/recommend/user/1?n=10")),
        "popular": ids(client.get("/popular?n=10")),
        "cluster": [
            m["movieId"] for m in client.get(f"/clusters/{cluster}?n=10").get_json()["movies"]
        ],
        "summary": client.get("/clusters").get_json()[cluster]["top_movies"],
    }
    return {name: movie in found for name, found in listed.items()}


def test_a_hidden_movie_leaves_every_list_which_keeps_its_length_and_comes_back(client):
    movie = ids(client.get("/recommend/user/1?n=10"))[0]
    details = client.get(f"/movies/{movie}").get_json()
    cluster = details["cluster"]
    shown = everywhere(client, movie, cluster)
    assert shown["user"]
    title_word = details["title"].split()[0]
    answer = patch(client, movie, {"hidden": True})
    assert answer.status_code == 200 and answer.get_json()["hidden"] is True
    assert not any(everywhere(client, movie, cluster).values())
    assert len(ids(client.get("/recommend/user/1?n=50"))) == 50  # the spares moved up
    assert len(ids(client.get("/popular?n=50"))) == 50
    assert movie not in ids(client.get(f"/search?q={title_word}&n=50"))
    assert client.get(f"/movies/{movie}").get_json()["hidden"] is True  # operators see it
    assert client.get(f"/movie/{movie}").get_json()["hidden"] is True
    assert patch(client, movie, {"hidden": False}).get_json()["hidden"] is False
    assert everywhere(client, movie, cluster) == shown


def test_a_new_title_and_genres_are_served_at_once_and_the_movie_is_placed(
    client, broker, r, small_run
):
    movie = ids(client.get("/popular?n=1"))[0]
    answer = patch(client, movie, {"title": "Renamed Film (1999)", "genres": "Horror|Documentary"})
    body = answer.get_json()
    assert answer.status_code == 200, body
    assert (body["title"], body["genres"]) == ("Renamed Film (1999)", "Horror|Documentary")
    assert ids(client.get("/search?q=renamed film")) == [movie]
    assert broker.sent[-1][:2] == (TASK_PLACE_MOVIE, [movie])
    # what the worker's task then does, against the same version
    depth = PipelineParams().stored_depth
    placed = place_movie(small_run.folder, movie, "Horror|Documentary", "", depth)
    write_place(r, movie, small_run.folder.version, placed.cluster, placed.similar)
    assert client.get(f"/movies/{movie}").get_json()["cluster"] == placed.cluster
    similar = client.get(f"/recommend/movie/{movie}?n=5").get_json()
    assert [m["movieId"] for m in similar] == [m for m, _ in placed.similar[:5]]
    assert {m["cluster"] for m in similar} == {placed.cluster}
    assert read_changes(r).place(movie, small_run.folder.version).cluster == placed.cluster


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, None),
        ({"hidden": "yes"}, "hidden"),
        ({"title": ""}, "title"),
        ({"title": 5}, "title"),
        ({"genres": ["Comedy"]}, "genres"),
        ({"rating": 5}, "rating"),
        ({"title": "A\u0000B"}, "title"),
        (["hidden"], None),
    ],
)
def test_a_bad_change_is_400_naming_the_field(client, body, field):
    movie = ids(client.get("/popular?n=1"))[0]
    answer = patch(client, movie, body)
    assert answer.status_code == 400 and answer.get_json().get("field") == field


def test_an_unknown_movie_is_404_and_a_change_needs_the_token(client):
    assert patch(client, 4_000_000_000, {"hidden": True}).status_code == 404
    assert client.patch("/movies/1", json={"hidden": True}).status_code == 401
