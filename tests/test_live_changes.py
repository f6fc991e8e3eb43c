"""Users erased and movies changed under `movierec up` (real Redis, PostgreSQL, worker and web
server, over HTTP), including while a retrain runs: what the retrain publishes must not bring
an erased user back."""

from __future__ import annotations

from urllib.parse import quote

import pytest
import redis

from cache import keys
from cache.erasure import versions_held
from tests.serving_helpers import wait_until
from tests.test_e2e_up import Service

pytestmark = pytest.mark.integration
JOB_SECONDS = 180


@pytest.fixture(scope="module")
def service(small_data, tmp_path_factory):
    svc = Service(tmp_path_factory.mktemp("live"), small_data)
    svc.env["MOVIEREC_CHUNK_USERS"] = "5"  # a users phase of seconds: time to erase inside it
    svc.start()
    yield svc
    if svc.process.poll() is None:
        svc.stop()


@pytest.fixture(scope="module")
def r(service) -> redis.Redis:
    password = (service.tmp / "out" / "redis" / "password").read_text().strip()
    url = f"redis://:{quote(password, safe='')}@127.0.0.1:{service.redis_port}/0"
    return redis.Redis.from_url(url, socket_timeout=5)


def retrain(service) -> str:
    status, body = service.post("/jobs/retrain")
    assert status == 202, body
    return body["job_id"]


def stage(service, job_id: str) -> str:
    return (service.get(f"/jobs/{job_id}")[1].get("progress") or {}).get("stage") or ""


def finished(service, job_id: str) -> dict:
    body = wait_until(lambda: service.job_done(job_id), JOB_SECONDS, f"job {job_id}", 0.2)
    assert body["state"] == "SUCCESS", body
    return body


def held_anywhere(r: redis.Redis, user: int) -> list[str]:
    """Versions in Redis holding the user, and any key that names them."""
    versions = [v for v in versions_held(r) if r.hexists(keys.VersionKeys(v).users, user)]
    named = [k.decode() for k in r.scan_iter(match=f"*:{user}") if b":refresh:" in k]
    return versions + named


def test_users_erased_during_a_retrain_are_not_brought_back_by_it_nor_the_next(
    service, r, small_shape
):
    # Chunks go in user order: the first user's entry is staged before the erasure (which
    # removes it there too), the last one's after it (the publish takes it out before the flip).
    users = [1, small_shape.users]
    assert all(service.get(f"/users/{user}")[0] == 200 for user in users)
    job = retrain(service)
    wait_until(lambda: stage(service, job) == "users", JOB_SECONDS, "the users phase", 0.05)
    assert [service.send("DELETE", f"/users/{user}", None)[0] for user in users] == [204, 204]
    done = finished(service, job)  # its snapshot held both
    assert done["result"]["version"] == service.get("/")[1]["model_version"]
    for user in users:
        assert service.get(f"/users/{user}")[0] == 404
        assert service.get(f"/recommend/user/{user}")[0] == 404
        assert held_anywhere(r, user) == []
    finished(service, retrain(service))  # the next one reuses the live version's ratings
    for user in users:
        assert service.get(f"/users/{user}")[0] == 404
        assert held_anywhere(r, user) == []
        assert service.get(f"/users/{user}/ratings")[1]["total"] == 0
