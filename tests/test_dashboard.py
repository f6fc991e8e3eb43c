"""The dashboard's pages and the title search over a fakeredis cache: what each page shows,
that it follows the active version, and that its errors are pages while the API's stay JSON."""

from __future__ import annotations

import dataclasses
import json
import re
import time
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import fakeredis
import pandas as pd
import pytest
from celery import Celery

from cache import keys
from cache.entries import add_movie, movie_entry
from cache.keys import VersionKeys
from cache.movie_changes import write_change
from cache.publish import publish_version_dir
from cache.reader import CacheReader
from cache.redis_client import WEB, redis_from_url
from cache.settings import get_settings
from db.database import DatabaseUnavailable
from store.versions import store_for_output
from tasks.jobs import record_job
from tests.serving_helpers import REPO, fake_version
from tests.test_web_api import TOKEN, VERSION, RecordingCelery
from web import create_app, state
from web.dashboard.charts import Bar, bar_chart, cluster_map

PAGE_BUDGET_BYTES = 200_000
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
PAGES = (
    "/dashboard/",
    "/dashboard/clusters",
    "/dashboard/clusters/1",
    "/dashboard/movies/20",
    "/dashboard/users/2",
    "/dashboard/search?q=beta",
)


@pytest.fixture
def r() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis()


@pytest.fixture
def jobs_celery() -> Celery:
    """Results in memory: job states without a broker."""
    return Celery("dashboard-test", broker="memory://", backend="cache+memory://")


def make_app(r, tmp_path: Path, **config):
    out = tmp_path / "out"
    store = store_for_output(out)
    config = {"REDIS": r, "API_TOKEN": TOKEN, "CELERY": RecordingCelery(), "STORE": store} | config
    app = create_app(config)
    app.extensions[state.SETTINGS] = dataclasses.replace(get_settings(), out_dir=out)
    return app


@pytest.fixture
def app(r, tmp_path):
    publish_version_dir(r, fake_version(tmp_path / "models", VERSION))
    return make_app(r, tmp_path)


@pytest.fixture
def client(app):
    return app.test_client()


def page(client, path: str, status: int = 200) -> str:
    response = client.get(path)
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


def text(html: str) -> str:
    """The words of a page without its tags, spaces collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


@pytest.mark.parametrize("path", PAGES)
def test_every_page_is_html_of_the_active_version_with_its_static_files(client, path):
    html = page(client, path)
    assert html.startswith("<!doctype html>") and '<html lang="en">' in html
    assert f"Serving version <code data-version>{VERSION}</code>" in html
    for static in re.findall(r'(?:href|src)="(/dashboard/static/[^"]+)"', html):
        assert client.get(static).status_code == 200
    assert 'role="search"' in html and 'name="q"' in html  # search from any page


def test_pages_load_nothing_but_the_sites_own_files(client):
    policy = client.get("/dashboard/").headers["Content-Security-Policy"]
    assert policy.startswith("default-src 'self';")


def test_pages_follow_the_active_version(r, tmp_path, client):
    assert "Beta (2001)" in page(client, "/dashboard/movies/20")
    publish_version_dir(r, fake_version(tmp_path / "models", "20260202T000000Z-bbbb", " [new]"))
    html = page(client, "/dashboard/movies/20")
    assert "Beta (2001) [new]" in html and "20260202T000000Z-bbbb" in html
    assert "Beta (2001) [new]" in page(client, "/dashboard/search?q=beta")


def test_the_overview_names_the_model_and_charts_cluster_sizes(client):
    words = text(page(client, "/dashboard/"))
    assert f"Version {VERSION}" in words
    assert "Movies 6 Users 3 Clusters 2" in words
    assert "No offline evaluation yet: movierec evaluate writes one." in words
    assert "trained before cluster maps were kept" in words
    html = page(client, "/dashboard/")
    sizes = re.search(r'<svg class="chart"[^>]*>(?:(?!</svg>).)*Movies per cluster.*?</svg>', html)
    assert sizes and sizes.group().count("<rect") == 2
    assert 'href="/dashboard/clusters/1"' in sizes.group()


POINTS = [[10, 0.0, 0.0, 0], [20, 1.0, 2.0, 0], [40, -1.0, 1.0, 1]]


def test_the_overview_draws_the_cluster_map_when_the_version_has_one(r, client):
    r.set(VersionKeys(VERSION).cluster_map, json.dumps(POINTS))
    html = page(client, "/dashboard/")
    assert "3 sampled movies" in text(html)
    paths = re.findall(r'<path stroke="(#[0-9a-f]{6})" d="([^"]+)">', html)
    assert [d.count("h0") for _, d in paths] == [2, 1]
    assert paths[0][0] != paths[1][0]  # one colour per cluster


def test_the_overview_draws_the_cluster_map_once_per_version(r, tmp_path, client, monkeypatch):
    drawn = []

    def counted(points, href):
        drawn.append(len(points))
        return cluster_map(points, href)

    monkeypatch.setattr("web.dashboard.views.cluster_map", counted)
    r.set(VersionKeys(VERSION).cluster_map, json.dumps(POINTS))
    assert page(client, "/dashboard/") == page(client, "/dashboard/")
    assert drawn == [3]
    new = "20260202T000000Z-bbbb"
    publish_version_dir(r, fake_version(tmp_path / "models", new))
    r.set(VersionKeys(new).cluster_map, json.dumps(POINTS[:2]))
    assert "2 sampled movies" in text(page(client, "/dashboard/"))
    assert drawn == [3, 2]


def test_a_map_read_after_a_flip_is_kept_under_its_own_version(r, tmp_path, client, monkeypatch):
    """The view reads the version, a flip happens, then the map is read: the newer version's
    map must not be kept as the older one's, which a rollback would make active again."""
    old_points, new = POINTS, "20260202T000000Z-bbbb"
    r.set(VersionKeys(VERSION).cluster_map, json.dumps(old_points))
    publish_version_dir(r, fake_version(tmp_path / "models", new))
    r.set(VersionKeys(new).cluster_map, json.dumps(POINTS[:2]))
    r.set(keys.ACTIVE, VERSION)
    read_map = CacheReader.cluster_map

    def flip_first(reader):
        r.set(keys.ACTIVE, new)
        return read_map(reader)

    monkeypatch.setattr(CacheReader, "cluster_map", flip_first)
    page(client, "/dashboard/")  # read VERSION, then drew the new version's map
    monkeypatch.setattr(CacheReader, "cluster_map", read_map)
    r.set(keys.ACTIVE, VERSION)  # a rollback
    assert "3 sampled movies" in text(page(client, "/dashboard/"))


def test_the_overview_shows_the_offline_evaluation(app, tmp_path):
    report = {
        "protocol": {"list_length": 10},
        "counts": {"users_evaluated": 591},
        "methods": {"personal": "the default", "popular": "most rated"},
        "results": {
            "popular": {"precision": 0.056, "ndcg": 0.074},
            "personal": {"precision": 0.0883, "ndcg": 0.1201},
        },
    }
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "evaluation.json").write_text(json.dumps(report))
    store_for_output(tmp_path / "out").put_report(tmp_path / "out" / "evaluation.json")
    words = text(page(app.test_client(), "/dashboard/"))
    assert "Top-10 lists on held-out ratings of 591 users" in words
    assert "precision ndcg popular 0.0560 0.0740 personal 0.0883 0.1201" in words


def test_the_overview_lists_recent_jobs_newest_first(r, tmp_path, jobs_celery):
    publish_version_dir(r, fake_version(tmp_path / "models", VERSION))
    record_job(r, "job-old", "retrain")
    time.sleep(0.01)
    record_job(r, "job-new", "retrain")
    record_job(r, "job-old", "retrain", staged="x")  # a later update keeps its place
    jobs_celery.backend.store_result("job-new", {"version": "20260303T000000Z-cccc"}, "SUCCESS")
    jobs_celery.backend.mark_as_failure("job-old", RuntimeError("boom\ndetails"))
    html = page(make_app(r, tmp_path, CELERY=jobs_celery).test_client(), "/dashboard/")
    rows = re.findall(r'href="/jobs/([\w-]+)"', html)
    assert rows == ["job-new", "job-old"]
    words = text(html)
    assert "retrain → 20260303T000000Z-cccc SUCCESS 100%" in words
    assert "retrain FAILURE \N{EN DASH} JSON RuntimeError: boom" in words
    assert "data-follow" not in html  # no retrain is running or queued


def test_the_overview_follows_a_queued_retrain(r, tmp_path, jobs_celery):
    publish_version_dir(r, fake_version(tmp_path / "models", VERSION))
    record_job(r, "job-running", "retrain")  # PENDING: waiting for a worker
    html = page(make_app(r, tmp_path, CELERY=jobs_celery).test_client(), "/dashboard/")
    assert 'data-follow="/jobs/job-running"' in html


def test_the_clusters_page_and_a_cluster_page(client):
    words = text(page(client, "/dashboard/clusters"))
    assert "Cluster 0 3 movies · mean rating 3.75 · 4 ratings" in words
    assert "Drama 67% Comedy: 67% Comedy 67%" in words  # the genre chart's rows
    assert "Best movies # Title 1 Alpha (2000)" in words
    words = text(page(client, "/dashboard/clusters/1"))
    assert "Action 67% Sci-Fi: 33% Sci-Fi 33%" in words
    assert "Delta (2003) Action 4.00 2" in words  # best first, with genres and ratings


def test_the_movie_page_links_its_similar_movies(client):
    html = page(client, "/dashboard/movies/10")
    words = text(html)
    assert "Alpha (2000)" in words and "Mean rating 4.25" in words
    similar = re.search(r'<table id="similar">.*?</table>', html, re.S).group()
    assert re.findall(r'href="/dashboard/movies/(\d+)"', similar) == ["20", "30"]
    assert "0.900" in similar


def test_the_user_page_shows_lists_with_reasons_and_says_there_is_no_database(client):
    html = page(client, "/dashboard/users/2")
    words = text(html)
    assert "Favorite cluster cluster 1" in words
    assert "How many of each cluster's movies the user rated." in words
    listed = re.search(r'<section id="recommendations".*?</section>', html, re.S).group()
    assert re.findall(r'<tr data-movie="(\d+)">', listed) == ["60", "10", "20"]
    assert "popular with everyone" in listed
    assert words.count("live writes need a database") == 2  # no form, no history
    assert 'id="rate-form"' not in html


def test_the_user_page_reads_the_users_entry_once(r, client, monkeypatch):
    """The reader reads an entry with its one script (EVALSHA), loaded by the first view."""
    first = page(client, "/dashboard/users/2")
    reads = []
    evalsha = r.evalsha
    # evalsha(sha, numkeys, *keys, prefix, part, how...): keep what is read
    monkeypatch.setattr(
        r, "evalsha", lambda *args: reads.append(args[3 + args[1] :]) or evalsha(*args)
    )
    assert page(client, "/dashboard/users/2") == first
    assert reads == [("users", "hget", 2)]


def test_the_user_page_says_when_the_database_is_down(r, tmp_path):
    class DownDatabase:
        def connection(self):
            raise DatabaseUnavailable("the database is unavailable: refused")

    publish_version_dir(r, fake_version(tmp_path / "models", VERSION))
    client = make_app(r, tmp_path, DATABASE=DownDatabase()).test_client()
    assert "The database is unavailable; try again shortly." in page(client, "/dashboard/users/1")


def test_the_user_box_opens_a_user_page(client):
    response = client.get("/dashboard/users?id=2")
    assert response.status_code == 302 and response.location == "/dashboard/users/2"
    assert "A user id is a whole number" in page(client, "/dashboard/users?id=two", 400)


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("/dashboard/movies/999", "The live version has no movie 999."),
        ("/dashboard/clusters/7", "The live version has no cluster 7."),
        ("/dashboard/users/999", "a user has a list once they have rated movies"),
        ("/dashboard/users/0", "The live version has no list for user 0."),
        ("/dashboard/movies/abc", "The dashboard has no such page."),
        ("/dashboard/no/such/page", "The dashboard has no such page."),
    ],
)
def test_unknown_things_are_friendly_404_pages(client, path, says):
    html = page(client, path, 404)
    assert says in text(html) and "Back to the overview" in html


def test_without_a_published_version_pages_are_503_with_the_way_out(r, tmp_path):
    client = make_app(r, tmp_path).test_client()
    for path in ("/dashboard/", "/dashboard/movies/1", "/dashboard/search?q=x"):
        words = text(page(client, path, 503))
        assert "Nothing is published yet" in words and "POST /jobs/retrain" in words


def test_with_redis_down_pages_are_503(tmp_path):
    client = make_app(redis_from_url("redis://127.0.0.1:1/0", WEB), tmp_path).test_client()
    assert "The cache is unavailable" in page(client, "/dashboard/clusters", 503)


def test_the_api_keeps_its_json_errors(client):
    for path, status in (("/movie/999", 404), ("/no/such/page", 404), ("/search", 400)):
        response = client.get(path)
        assert response.status_code == status and response.is_json


@pytest.mark.parametrize(
    ("accept", "redirected"),
    [
        (BROWSER, True),
        ("text/html", True),
        (None, False),
        ("*/*", False),
        ("application/json", False),
    ],
)
def test_the_root_sends_browsers_to_the_dashboard_and_api_clients_json(client, accept, redirected):
    response = client.get("/", headers={"Accept": accept} if accept else {})
    assert response.headers["Vary"] == "Accept"
    if redirected:
        assert response.status_code == 302 and response.location == "/dashboard/"
    else:
        assert response.status_code == 200 and response.get_json()["model_version"] == VERSION


def search(client, query: str, **params) -> list:
    response = client.get("/search", query_string={"q": query, **params})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_search_matches_every_word_case_and_accents_aside(client):
    assert search(client, "BETA") == [
        {"movieId": 20, "title": "Beta (2001)", "genres": "Comedy|Drama", "cluster": 0}
    ]
    assert [m["movieId"] for m in search(client, "2001 bet")] == [20]
    assert search(client, "alpha beta") == []
    assert search(client, "?!") == []  # no word: nothing, not everything


def test_search_ranks_the_start_of_a_title_then_the_phrase_then_the_most_rated(r, client):
    def add(movie_id: int, title: str, n_ratings: int) -> None:
        add_movie(r, VERSION, movie_id, movie_entry(title, "Drama", 0, 3.0, n_ratings, 3.0))

    add(101, "Story of Toys, The (1990)", 50)
    add(102, "Toy Story (1995)", 1)
    add(103, "Toy Story 2 (1999)", 5)
    add(104, "Big Toy Story Night (2001)", 9)
    add(105, "Amélie (2001)", 3)
    assert [m["movieId"] for m in search(client, "toy story")] == [103, 102, 104, 101]
    assert [m["movieId"] for m in search(client, "toy story", n=2)] == [103, 102]
    assert [m["movieId"] for m in search(client, "amelie")] == [105]  # found at once


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("godfater", 201),
        ("matrx", 202),
        ("shawshank redemtion", 203),
        ("redemption shawshank", 203),
    ],
)
def test_search_forgives_typos_and_ranks_exact_matches_first(r, client, query, found):
    titles = {
        201: ("Godfather, The (1972)", 40),
        202: ("Matrix, The (1999)", 60),
        203: ("Shawshank Redemption, The (1994)", 70),
        204: ("Mother (2009)", 90),  # near "godfater" by letters, not the movie meant
        205: ("Matrix Reloaded, The (2003)", 10),
    }
    for movie_id, (title, n_ratings) in titles.items():
        add_movie(r, VERSION, movie_id, movie_entry(title, "Drama", 0, 3.0, n_ratings, 3.0))
    assert found in [m["movieId"] for m in search(client, query)][:3]
    assert [m["movieId"] for m in search(client, "matrix")][:2] == [202, 205]  # as typed first


def test_hidden_movies_are_not_found(r, client):
    add_movie(r, VERSION, 301, movie_entry("Withdrawn Picture (2001)", "Drama", 0, 3.0, 5, 3.0))
    assert [m["movieId"] for m in search(client, "withdrawn")] == [301]
    write_change(r, 301, True, "Withdrawn Picture (2001)", "Drama")
    assert search(client, "withdrawn") == [] and search(client, "withdrawm") == []


@pytest.mark.parametrize("query", [{}, {"q": ""}, {"q": "x" * 201}, {"q": "x", "n": 51}])
def test_search_refuses_bad_parameters_as_json(client, query):
    response = client.get("/search", query_string=query)
    assert response.status_code == 400 and response.is_json


def test_bar_charts_escape_and_shorten_labels_and_scale_to_the_longest_bar():
    bars = [Bar("<b>a very long cluster label</b>", 2, "2", href="/x?a=1&b=2"), Bar("b", 1, "1")]
    svg = str(bar_chart(bars, "sizes & more"))  # a str: `in` on Markup escapes its operand
    assert "<b>" not in svg and "&lt;b&gt;a very long clust…</text>" in svg
    assert "<title>&lt;b&gt;a very long cluster label&lt;/b&gt;: 2</title>" in svg
    assert '<a href="/x?a=1&amp;b=2">' in svg and "<title>sizes &amp; more</title>" in svg
    widths = [float(w) for w in re.findall(r'<rect [^>]*width="([\d.]+)"', svg)]
    assert widths[0] == 2 * widths[1] > 0


def test_the_cluster_map_keeps_one_scale_and_puts_north_up():
    svg = str(cluster_map([[1, 0, 0, 0], [2, 10, 0, 0], [3, 0, 5, 1]], lambda c: f"/c/{c}"))
    dots = [tuple(map(int, m)) for m in re.findall(r"M(-?\d+) (-?\d+)h0", svg)]
    (x1, y1), (x2, y2), (_, y3) = dots
    assert y1 == y2 > y3  # a larger y is higher on the page
    assert x2 - x1 == 2 * (y1 - y3)  # the same scale on both axes
    assert '<a href="/c/1">' in svg


@pytest.mark.parametrize("run", ["small_run", "sample_run"])
def test_pages_of_a_whole_catalogue_fit_the_size_budget(run, request, tmp_path):
    """The issue's budget, on the synthetic folder and on the real sample: at most 200 KB a
    page (speed is measured in BENCHMARKS.md)."""
    version = request.getfixturevalue(run).folder
    r = fakeredis.FakeRedis()
    publish_version_dir(r, version)
    client = make_app(r, tmp_path).test_client()
    movie = int(pd.read_parquet(version.path / "movies.parquet", columns=["movieId"]).iloc[0, 0])
    user = 1
    cluster = client.get(f"/movie/{movie}").get_json()["cluster"]
    paths = (
        "/dashboard/",
        "/dashboard/clusters",
        f"/dashboard/clusters/{cluster}",
        f"/dashboard/movies/{movie}",
        f"/dashboard/users/{user}",
        "/dashboard/search?q=the",
    )
    sizes = {path: len(page(client, path).encode()) for path in paths}
    assert max(sizes.values()) <= PAGE_BUDGET_BYTES, sizes
    assert "sampled movies" in page(client, "/dashboard/")  # this version has a map


def test_a_non_editable_install_ships_the_templates_and_static_files():
    package_data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]
    root = REPO / "web" / "dashboard"
    shipped = [p for folder in ("templates", "static") for p in (root / folder).rglob("*.*")]
    assert len(shipped) >= 5
    for path in shipped:
        relative = path.relative_to(root).as_posix()
        assert any(fnmatch(relative, glob) for glob in package_data["web.dashboard"]), relative
