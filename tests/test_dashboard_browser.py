"""The dashboard in a real browser (Debian's Chromium through Selenium) against `movierec up`:
every page opens without a console error or a failed request, search leads to a movie and its
similar movies, a user's page agrees with the JSON API, rating a movie changes the list, and a
retrain started from the overview is followed to 100% and the new version.

Screenshots of each page go to output/screenshots/.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service as ChromeService
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.wait import WebDriverWait

from tests.serving_helpers import REPO
from tests.test_e2e_up import TOKEN
from tests.test_e2e_up import Service as UpService
from web.title_index import fold

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()),
        reason="needs Debian's chromium and chromium-driver: apt-get install chromium "
        "chromium-driver (.ci/run installs them)",
    ),
]
SCREENSHOTS = REPO / "output" / "screenshots"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
)
LAPTOP, PHONE = (1280, 900), (390, 844)
STEP_SECONDS, RETRAIN_SECONDS = 30, 300


@pytest.fixture(scope="module")
def service(small_data, tmp_path_factory) -> Iterator[UpService]:
    svc = UpService(tmp_path_factory.mktemp("dashboard"), small_data)
    svc.start()
    yield svc
    if svc.process.poll() is None:
        svc.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    profile = tempfile.mkdtemp(prefix="movierec-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=ChromeService(str(CHROMEDRIVER)), options=options)
    driver.set_window_size(*LAPTOP)
    driver.get("about:blank")
    problems(driver)  # what Chromium's own start page asked for (it reaches for the internet)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def problems(driver: WebDriver, expected: tuple[str, ...] = ()) -> list[str]:
    """Console errors and failed requests since the last call, but those naming an `expected`
    address (a 404 page's own status)."""
    found = [
        f"console: {entry['message']}"
        for entry in driver.get_log("browser")
        if entry["level"] == "SEVERE"
    ]
    urls: dict[str, str] = {}
    for entry in driver.get_log("performance"):
        event = json.loads(entry["message"])["message"]
        params = event.get("params", {})
        if event["method"] == "Network.requestWillBeSent":
            urls[params["requestId"]] = params["request"]["url"]
        elif event["method"] == "Network.responseReceived" and params["response"]["status"] >= 400:
            found.append(f"{params['response']['status']} {params['response']['url']}")
        elif event["method"] == "Network.loadingFailed" and not params.get("canceled"):
            url = urls.get(params["requestId"], "?")
            found.append(f"failed: {params.get('errorText')} {params.get('type')} {url}")
    return [p for p in found if not any(address in p for address in expected)]


def loaded(driver: WebDriver) -> set[str]:
    """Addresses of the page's resources that answered 200."""
    entries = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => [e.name, e.responseStatus])"
    )
    return {name for name, status in entries if status == 200}


def visit(driver: WebDriver, url: str) -> None:
    driver.get(url)
    assert problems(driver) == [], url
    assert {"dashboard.css", "dashboard.js"} <= {u.rsplit("/", 1)[-1] for u in loaded(driver)}


def screenshot(driver: WebDriver, name: str) -> Path:
    """The whole page, at the window's width."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    width = driver.get_window_size()["width"]
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, height + 100)  # + the window's frame
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    driver.set_window_size(width, LAPTOP[1])
    return path


def wait(driver: WebDriver, seconds: float = STEP_SECONDS) -> WebDriverWait:
    return WebDriverWait(driver, seconds, poll_frequency=0.2)


def heading(driver: WebDriver) -> str:
    return driver.find_element(By.TAG_NAME, "h1").text


def type_token(driver: WebDriver, field: str) -> None:
    """Over whatever the session remembered from another form."""
    box = driver.find_element(By.ID, field)
    box.clear()
    box.send_keys(TOKEN)


def rows(driver: WebDriver, table: str) -> list[int]:
    found = driver.find_elements(By.CSS_SELECTOR, f"{table} tr[data-movie]")
    return [int(row.get_attribute("data-movie")) for row in found]


def test_every_page_opens_without_errors_on_a_laptop_and_a_phone(service, browser, known):
    browser.get(service.base + "/")  # a browser at the root is sent to the dashboard
    assert browser.current_url == service.base + "/dashboard/"
    cluster = service.get(f"/movie/{known.movie}")[1]["cluster"]
    pages = {
        "overview": "/dashboard/",
        "clusters": "/dashboard/clusters",
        "cluster": f"/dashboard/clusters/{cluster}",
        "movie": f"/dashboard/movies/{known.movie}",  # an accented title
        "user": "/dashboard/users/1",
        "search": f"/dashboard/search?q={fold(known.title).split()[0]}",
    }
    for name, path in pages.items():
        visit(browser, service.base + path)
        assert browser.title.endswith("· movierec")
        screenshot(browser, name)
    visit(browser, service.base + pages["overview"])
    assert len(browser.find_elements(By.CSS_SELECTOR, "figure svg path")) == 10  # the map
    browser.set_window_size(*PHONE)
    try:
        for name, path in pages.items():
            visit(browser, service.base + path)
            overflow = "return document.documentElement.scrollWidth - window.innerWidth"
            assert browser.execute_script(overflow) <= 0, f"{path} scrolls sideways on a phone"
            screenshot(browser, f"{name}-phone")
    finally:
        browser.set_window_size(*LAPTOP)

    browser.get(service.base + "/dashboard/movies/99999999")
    assert heading(browser) == "Not Found"
    assert problems(browser, expected=("/dashboard/movies/99999999",)) == []


def test_search_a_title_open_the_movie_and_follow_a_similar_movie(service, browser, known):
    visit(browser, service.base + "/dashboard/clusters")
    box = browser.find_element(By.ID, "search-q")
    query = fold(known.title)  # the accented title typed without its accents
    assert query.isascii() and not known.title.isascii()
    box.send_keys(query, Keys.ENTER)
    wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#hits tr[data-movie]"))
    assert problems(browser) == []
    browser.find_element(By.LINK_TEXT, known.title).click()
    wait(browser).until(lambda d: heading(d) == known.title)
    assert problems(browser) == []
    similar = browser.find_element(By.CSS_SELECTOR, "#similar tbody a")
    title = similar.text
    similar.click()
    wait(browser).until(lambda d: heading(d) == title)
    assert problems(browser) == []
    assert rows(browser, "#similar")  # its own similar movies, each a link again


def test_a_user_page_shows_what_the_json_api_serves(service, browser):
    visit(browser, service.base + "/dashboard/users/1")
    status, listed = service.get("/recommend/user/1?n=10")
    assert status == 200
    assert rows(browser, "#recommendations") == [m["movieId"] for m in listed]
    reasons = browser.find_elements(By.CSS_SELECTOR, "#recommendations tbody td:last-child")
    assert [cell.text for cell in reasons] == [m["reason"] for m in listed]
    favorite = service.get("/users/1")[1]["favorite_cluster"]
    assert f"cluster {favorite}" in browser.find_element(By.CSS_SELECTOR, ".facts").text


def test_rating_a_movie_from_the_user_page_changes_the_list(service, browser):
    visit(browser, service.base + "/dashboard/users/1")
    top = rows(browser, "#recommendations")[0]
    form = browser.find_element(By.ID, "rate-form")
    form.find_element(By.ID, "rate-movie").send_keys(str(top))
    type_token(browser, "rate-token")
    form.find_element(By.TAG_NAME, "button").click()

    def rated(driver: WebDriver) -> bool:
        return driver.find_element(By.ID, "rate-status").text.startswith("Saved.")

    wait(browser).until(rated)
    assert top not in rows(browser, "#recommendations")
    assert rows(browser, "#history")[0] == top
    assert browser.find_elements(By.CSS_SELECTOR, "#recommendations tr.new")
    n_ratings = service.get("/users/1")[1]["n_ratings"]
    assert f"Ratings in this version\n{n_ratings:,}" in browser.find_element(By.ID, "profile").text
    assert problems(browser) == []
    screenshot(browser, "user-after-rating")


def test_a_retrain_from_the_overview_is_followed_to_the_new_version(service, browser):
    visit(browser, service.base + "/dashboard/")
    old = browser.find_element(By.CSS_SELECTOR, "[data-version]").text
    assert old == service.get("/")[1]["model_version"]
    type_token(browser, "retrain-token")
    browser.find_element(By.CSS_SELECTOR, "#retrain button").click()
    progress = browser.find_element(By.ID, "retrain-progress")
    status = browser.find_element(By.ID, "retrain-status")
    wait(browser, RETRAIN_SECONDS).until(
        lambda _: status.text.startswith(("Done", "Failed", "Lost"))
    )
    assert status.text.startswith("Done"), status.text
    assert progress.is_displayed() and float(progress.get_attribute("value")) == 100
    new = service.get("/")[1]["model_version"]
    assert new != old and new in status.text
    assert {e.text for e in browser.find_elements(By.CSS_SELECTOR, "[data-version]")} == {new}
    assert problems(browser) == []
    visit(browser, service.base + "/dashboard/")
    assert browser.find_element(By.CSS_SELECTOR, "[data-version]").text == new
    screenshot(browser, "overview-after-retrain")
