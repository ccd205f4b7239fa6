"""Stores on both back ends for the suites: a SQLite file, or a fresh database on one embedded
PostgreSQL server shared by the whole test session.

    target = new_target("postgres", tmp_path)   # a URI (or skips, saying why no server runs)
    app = create_store(target)                  # initialised, with the people of CAST
    rows = event_rows(target)                   # (position, record uuid, version, topic, state)
    query(target, "SELECT COUNT(*) FROM stored_events WHERE rowid > ?", 3)   # either back end

The suites' `backend` fixture (tests/conftest.py) runs a test once per back end, with the back
end in the test's id (`test_x[sqlite]`, `test_x[postgres]`); `store_target` gives such a test an
empty place for its store and drops the PostgreSQL database afterwards.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest

from capa.adapters.credentials import TABLES as CREDENTIAL_TABLES
from capa.adapters.target import parse_target
from capa.adapters.userkeys import CREATE_TABLE as USER_KEYS_TABLE
from capa.app.application import CapaApplication
from capa.app.store import EVENTS_TABLE, open_store
from tests.support.cast import (
    ORGANISATION,
    OWNER,
    PASSWORD,
    PLANT,
    QUALITY_ENGINEER,
    QUALITY_MANAGER,
    REPORTER,
    Cast,
    part_of,
)
from tests.support.postgres import (
    PostgresUnavailable,
    create_database,
    drop_database,
    embedded_postgres,
)

BACKENDS = ("sqlite", "postgres")

#: The store's administrator, and the few people of the plant that `create_store` adds.
ADMIN = QUALITY_MANAGER
ENGINEER = QUALITY_ENGINEER
CAST: Cast = part_of(PLANT, ADMIN, ENGINEER, OWNER, REPORTER)

_server: dict[str, str] = {}


def postgres_server() -> str:
    """The superuser URI of the session's one server, started on first use and stopped when the
    test process ends; PostgresUnavailable (remembered) when it cannot start here."""
    if "error" in _server:
        raise PostgresUnavailable(_server["error"])
    if "uri" not in _server:
        stack = contextlib.ExitStack()
        try:
            _server["uri"] = stack.enter_context(embedded_postgres())
        except PostgresUnavailable as exc:
            _server["error"] = str(exc)
            raise
        atexit.register(stack.close)
    return _server["uri"]


#: Emptied databases of finished tests, ready for the next one: CREATE DATABASE costs a quarter
#: of a second of server time, emptying one a hundredth.
_spare_databases: list[str] = []


def new_target(backend: str, folder: Path, name: str = "capa.db") -> str:
    """An empty place for a store: a file path in `folder`, or an empty PostgreSQL database (a
    fresh one, or one that `discard_target` emptied)."""
    if backend == "sqlite":
        return str(folder / name)
    try:
        server = postgres_server()
    except PostgresUnavailable as exc:
        pytest.skip(f"no PostgreSQL server: {exc}")
    if _spare_databases:
        return _spare_databases.pop()
    return create_database(server)


def clone_target(backend: str, template: str, folder: Path, name: str = "capa.db") -> str:
    """A copy of the store at `template` (closed) as a new, separate store: the SQLite file, or
    an empty database given capa's tables and then the template's stored events, byte for byte
    and at the same positions (capa keeps no snapshots), and its password hashes, failure runs
    and sessions. The read models and the audit ledger are not copied: the copy builds them from
    its events when first asked, as any store does."""
    if backend == "sqlite":
        copy = folder / name
        for suffix in ("", "-wal", "-shm"):
            source = Path(template + suffix)
            if source.exists():
                shutil.copyfile(source, Path(str(copy) + suffix))
        return str(copy)
    target = new_target(backend, folder, name)
    open_store(target, create=True).close()
    # The event table, and the tables of secrets and counters kept beside it.
    tables = [EVENTS_TABLE["postgres"], *CREDENTIAL_TABLES]
    with psycopg.connect(template) as source, psycopg.connect(target) as copy:
        # The users' encrypted signing keys live beside the events: without them no one could
        # sign in the copy.
        found = source.execute("SELECT to_regclass('public.capa_user_keys')").fetchone()
        if found is not None and found[0] is not None:
            copy.execute(USER_KEYS_TABLE)
            tables.append("capa_user_keys")
        for table in tables:
            with source.cursor().copy(f"COPY {table} TO STDOUT (FORMAT BINARY)") as out, \
                    copy.cursor().copy(f"COPY {table} FROM STDIN (FORMAT BINARY)") as into:
                for chunk in out:
                    into.write(chunk)
        copy.execute(
            f"SELECT setval(pg_get_serial_sequence('{tables[0]}', 'notification_id'), "
            f"COALESCE(MAX(notification_id), 0) + 1, false) FROM {tables[0]}")
    return target


def discard_target(target: str) -> None:
    """Done with a store: a PostgreSQL database is emptied (its other connections ended, its
    tables gone) and kept for the next test; a SQLite file goes with the test's folder."""
    if parse_target(target).kind != "postgres" or target in _spare_databases:
        return
    try:
        with psycopg.connect(target, autocommit=True, connect_timeout=10) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = current_database() AND pid <> pg_backend_pid()")
            conn.execute("DROP SCHEMA public CASCADE")
            conn.execute("CREATE SCHEMA public")
    except psycopg.Error:
        drop_database(target)
        return
    _spare_databases.append(target)


def create_store(target: str, cast: Cast | None = None) -> CapaApplication:
    """Initialise a store at `target` and add every user of the cast (all share PASSWORD)."""
    people = cast or CAST
    app = open_store(target, create=True)
    admin = next(iter(people))
    app.identity.initialise(ORGANISATION, admin=admin, full_name=people[admin][0],
                            password=PASSWORD)
    with app.acting_as(admin, PASSWORD):
        for user, (name, roles) in people.items():
            if user == admin:
                for role in sorted(set(roles) - {"admin"}):
                    app.identity.grant_role(user, role)
            else:
                app.identity.add_user(user, full_name=name, roles=roles, password=PASSWORD)
    return app


def event_rows(target: str) -> list[tuple[int, UUID, int, str, bytes]]:
    """Every stored event in global order: (position, record id, version, topic, state)."""
    if parse_target(target).kind == "sqlite":
        with contextlib.closing(sqlite3.connect(target)) as db:
            rows = db.execute(
                "SELECT rowid, originator_id, originator_version, topic, state "
                f"FROM {EVENTS_TABLE['sqlite']} ORDER BY rowid"
            ).fetchall()
        return [(int(p), UUID(hex=str(o)), int(v), str(t), bytes(s)) for p, o, v, t, s in rows]
    with psycopg.connect(target) as conn:
        pg_rows = conn.execute(
            "SELECT notification_id, originator_id, originator_version, topic, state "
            f"FROM {EVENTS_TABLE['postgres']} ORDER BY notification_id"
        ).fetchall()
    return [(int(p), o, int(v), str(t), bytes(s)) for p, o, v, t, s in pg_rows]


#: SQLite names of the event log, and what PostgreSQL calls them.
_POSTGRES_WORDS = {
    "stored_events": EVENTS_TABLE["postgres"],
    "stored_snapshots": f"{CapaApplication.name}_snapshots",
    "rowid": "notification_id",
}
_WORD = re.compile(r"\b(" + "|".join(_POSTGRES_WORDS) + r")\b")


def query(target: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Rows of a statement written for SQLite (`?` placeholders, stored_events, rowid) on
    either back end; on PostgreSQL the event tables, positions and placeholders are renamed."""
    if parse_target(target).kind == "sqlite":
        with contextlib.closing(sqlite3.connect(target)) as db, db:
            return [tuple(row) for row in db.execute(sql, args).fetchall()]
    statement = _WORD.sub(lambda m: _POSTGRES_WORDS[m.group(1)], sql)
    statement = statement.replace("%", "%%").replace("?", "%s")
    with psycopg.connect(target) as conn:
        cursor = conn.execute(statement, args)  # type: ignore[arg-type]
        rows = cursor.fetchall() if cursor.description else []
    return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in rows]


def insert_event(target: str, record: Any, version: int, topic: str, state: str) -> None:
    """One row appended to the event table by SQL, as someone who can write the store would:
    no code of capa's runs (a SQLite store keeps ids as hex text)."""
    originator = record.hex if "://" not in target else str(record)
    query(target, "INSERT INTO stored_events (originator_id, originator_version, topic, state) "
          "VALUES (?, ?, ?, ?)", originator, version, topic, state.encode())


def assert_login_refused(target: str, user: str, password: str, words: str) -> None:
    """A fresh process of the application does not let `user` log in, says `words`, and
    writes nothing."""
    from capa.domain.errors import NotPermitted

    app = open_store(target)
    try:
        before = event_count(target)
        with pytest.raises(NotPermitted) as refused:
            app.identity.login(user, password)
        assert words in str(refused.value)
        assert event_count(target) == before
    finally:
        app.close()


def store_exists(target: str) -> bool:
    """Whether a capa store (its event table) exists at a SQLite path or PostgreSQL URI."""
    if parse_target(target).kind == "sqlite":
        return Path(target).exists()
    try:
        with psycopg.connect(target, connect_timeout=10) as conn:
            row = conn.execute("SELECT to_regclass(%s)", (EVENTS_TABLE["postgres"],)).fetchone()
    except psycopg.OperationalError as exc:
        if "does not exist" in str(exc):
            return False
        raise
    return row is not None and row[0] is not None


def stored_bytes(target: str) -> bytes:
    """Everything the store holds: the SQLite file with its journal, or every value of every
    table of the PostgreSQL database (binary values as they are, others as text)."""
    if parse_target(target).kind == "sqlite":
        path = Path(target)
        return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")))
    chunks: list[bytes] = []
    with psycopg.connect(target) as conn:
        tables = [row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):  # type: ignore[arg-type]
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        chunks.append(bytes(value))
                    else:
                        chunks.append(str(value).encode())
    return b"\n".join(chunks)


def event_count(target: str) -> int:
    if parse_target(target).kind == "sqlite":
        with contextlib.closing(sqlite3.connect(target)) as db:
            return int(db.execute(f"SELECT COUNT(*) FROM {EVENTS_TABLE['sqlite']}").fetchone()[0])
    with psycopg.connect(target) as conn:
        row = conn.execute(f"SELECT COUNT(*) FROM {EVENTS_TABLE['postgres']}").fetchone()
    assert row is not None
    return int(row[0])


def cli_env(user: str, **extra: str) -> dict[str, str]:
    """The environment of a `capa` subprocess acting as `user` (no session file, no debug)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CAPA_", "POSTGRES_", "SQLITE_")) and k != "PERSISTENCE_MODULE"}
    env.update({"CAPA_USER": user, "CAPA_PASSWORD": PASSWORD, **extra})
    return env


def run_cli(target: str, user: str, args: Sequence[str], *, timeout: float = 120,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m capa --db TARGET --json ARGS...` as `user`; the finished process."""
    return subprocess.run(
        [sys.executable, "-m", "capa", "--db", target, "--json", *args],
        env=cli_env(user), capture_output=True, text=True, timeout=timeout, check=False,
        cwd=cwd,
    )


def close_all(apps: Sequence[Any]) -> None:
    for app in apps:
        with contextlib.suppress(Exception):
            app.close()


def audit_verify(target: str, cwd: Path) -> subprocess.CompletedProcess[str] | None:
    """`capa audit verify` on the store, or None when this build has no such command."""
    probe = subprocess.run([sys.executable, "-m", "capa", "audit", "verify", "--help"],
                           env=cli_env(ADMIN), capture_output=True, text=True, check=False,
                           cwd=cwd)
    if probe.returncode != 0:
        return None
    return run_cli(target, ADMIN, ["audit", "verify"], cwd=cwd)
