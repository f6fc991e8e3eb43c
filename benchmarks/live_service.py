"""The service under test of the live benchmarks: `movierec up` started in a folder of its own,
stopped with SIGINT with nothing left behind, a JSON client of its HTTP API, and a retrain
through it timed to its SUCCESS. Shared by bench_live's scenarios, bench_store, bench_serving
and bench_hidden."""

from __future__ import annotations

import http.client
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from benchmarks.machine import process_table, say
from service.embedded_redis import LOOPBACK, free_port

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "service.cli"]
# Our settings must not leak into the service under test: it starts everything itself.
SERVICE_ENV_DROP = (
    "REDIS_URL",
    "MOVIEREC_DATABASE_URL",
    "MOVIEREC_OUTPUT",
    "MOVIEREC_DATA",
    "MOVIEREC_API_TOKEN",
)


# ------------------------------------------------------------------------------ HTTP client


class Client:
    """JSON over one HTTP/1.1 connection per thread (kept alive; http.client reconnects if the
    server closes it)."""

    def __init__(self, base: str, token: str) -> None:
        parts = urlsplit(base)
        self.host, self.port, self.token = parts.hostname, parts.port, token
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        return conn

    def request(self, method: str, path: str, body: object = None) -> tuple[int, object]:
        headers, data = {}, None
        if body is not None or method != "GET":
            headers["Authorization"] = f"Bearer {self.token}"
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn = self._connection()
        try:
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            self._local.conn = None
            raise
        try:
            return response.status, json.loads(raw) if raw else None
        except ValueError:
            return response.status, raw[:200].decode(errors="replace")


def get_status(url: str) -> int | None:
    parts = urlsplit(url)
    try:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
        conn.request("GET", parts.path)
        status = conn.getresponse().status
        conn.close()
        return status
    except (OSError, http.client.HTTPException):
        return None


# ------------------------------------------------------------------------- the service


@dataclass
class Service:
    process: subprocess.Popen
    base: str
    token: str
    out: Path
    log: Path
    startup_s: float = 0.0
    stop_s: float = 0.0
    exit_code: int | None = None
    leftovers: list[str] = field(default_factory=list)


def environ_of(pid: int) -> bytes:
    with suppress(OSError):
        return Path(f"/proc/{pid}/environ").read_bytes()
    return b""


def processes_of(out: Path, skip: int) -> list[int]:
    """Processes of one `up` run: its environment names its output folder, or (PostgreSQL,
    which runs with an environment of its own) they work inside that folder."""
    marker = f"MOVIEREC_OUTPUT={out}\0".encode()
    found = []
    for pid, (_, _, command) in process_table().items():
        if pid == skip:
            continue
        cwd = ""
        with suppress(OSError):
            cwd = os.readlink(f"/proc/{pid}/cwd")
        if marker in environ_of(pid) or cwd.startswith(str(out)) or str(out) in command:
            found.append(pid)
    return found


def stop_service(service: Service, timeout: float = 90.0) -> None:
    """SIGINT to `up` (it stops its children in order), then make sure nothing of it is left."""
    start = time.monotonic()
    process = service.process
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        service.exit_code = process.wait(timeout)
    except subprocess.TimeoutExpired:
        say(f"`up` did not stop within {timeout:.0f} s of SIGINT: killing its group")
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        service.exit_code = process.wait()
    service.stop_s = time.monotonic() - start
    deadline = time.monotonic() + 15
    while (left := processes_of(service.out, os.getpid())) and time.monotonic() < deadline:
        time.sleep(0.5)
    for pid in left:  # processes this run started, by pid
        with suppress(OSError):
            name = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:100]
            service.leftovers.append(f"{pid} {name}")
            os.kill(pid, signal.SIGKILL)
    if service.leftovers:
        say(f"left running after `up` stopped, killed: {service.leftovers}")


@contextmanager
def service_up(data: Path, work: Path, startup_timeout: float) -> Iterator[Service]:
    out, log = (work / "out").resolve(), work / "up.log"
    bind = f"{LOOPBACK}:{free_port()}"
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_ENV_DROP}
    token = env["MOVIEREC_API_TOKEN"] = secrets.token_urlsafe(24)
    command = [*CLI, "up", "--data", str(data), "--out", str(out), "--bind", bind]
    say(f"starting `movierec up` on {bind}, output in {out} ...")
    start = time.monotonic()
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    service = Service(process, f"http://{bind}", token, out, log)
    try:
        while get_status(f"{service.base}/health") != 200:
            if process.poll() is not None or time.monotonic() - start > startup_timeout:
                tail = log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"`movierec up` did not become healthy:\n{tail}")
            time.sleep(0.25)
        service.startup_s = time.monotonic() - start
        say(f"healthy after {service.startup_s:.1f} s")
        yield service
    finally:
        stop_service(service)


def retrain(service: Service, timeout: float = 900.0) -> dict:
    """POST /jobs/retrain to the job's SUCCESS seen through GET /jobs/<id>."""
    client = Client(service.base, service.token)
    _, before = client.request("GET", "/")
    start = time.perf_counter()
    while True:  # the previous retrain's lock is released by a task of its own, just after
        status, body = client.request("POST", "/jobs/retrain")
        if status != 409 or time.perf_counter() - start > 60:
            break
        time.sleep(0.5)
        start = time.perf_counter()
    if status != 202:
        return {"error": f"POST /jobs/retrain answered {status}: {body}"}
    job = body["job_id"]
    stages = []
    while time.perf_counter() - start < timeout:
        status, found = client.request("GET", f"/jobs/{job}")
        state = found.get("state") if isinstance(found, dict) else None
        progress = (found or {}).get("progress") or {}
        if progress.get("stage") and (not stages or stages[-1][0] != progress["stage"]):
            stages.append((progress["stage"], round(time.perf_counter() - start, 2)))
        if state in ("SUCCESS", "FAILURE"):
            break
        time.sleep(0.1)
    seconds = time.perf_counter() - start
    _, after = client.request("GET", "/")
    return {
        "seconds": seconds,
        "state": state,
        "stages": stages,
        "version_before": (before or {}).get("model_version"),
        "version_after": (after or {}).get("model_version"),
        "error": (found or {}).get("error"),
    }
