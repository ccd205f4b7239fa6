"""Stores on both back ends for the suites: a SQLite file, or a fresh database on one embedded
PostgreSQL server shared by the whole test session.

    target = new_target("postgres", tmp_path)   # a URI (or skips, saying why no server runs)
    app = create_store(target)                  # initialised, with the people of CAST
    rows = event_rows(target)                   # (position, record uuid, version, topic, state)
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest

from capa.adapters.target import parse_target
from capa.app.service import CapaApplication
from capa.app.store import EVENTS_TABLE, open_store
from tests.support.postgres import PostgresUnavailable, create_database, embedded_postgres

BACKENDS = ("sqlite", "postgres")
PASSWORD = "correct-horse-battery-staple"

ADMIN = "mhernandez"
ENGINEER = "jchen"
OWNER = "apatel"
REPORTER = "tokafor"

#: user id -> (full name, roles); the first initialises the store.
CAST: dict[str, tuple[str, list[str]]] = {
    ADMIN: ("Maria Hernandez", ["admin", "quality"]),
    ENGINEER: ("Jun Chen", ["quality"]),
    OWNER: ("Anil Patel", ["owner"]),
    REPORTER: ("Tolu Okafor", ["reporter"]),
}

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


def new_target(backend: str, folder: Path, name: str = "capa.db") -> str:
    """An empty place for a store: a file path in `folder`, or a fresh PostgreSQL database."""
    if backend == "sqlite":
        return str(folder / name)
    try:
        return create_database(postgres_server())
    except PostgresUnavailable as exc:
        pytest.skip(f"no PostgreSQL server: {exc}")


def create_store(target: str, cast: dict[str, tuple[str, list[str]]] | None = None
                 ) -> CapaApplication:
    """Initialise a store at `target` and add every user of the cast (all share PASSWORD)."""
    people = cast or CAST
    app = open_store(target, create=True)
    admin = next(iter(people))
    app.initialise("Northwind Medical Devices", admin=admin, full_name=people[admin][0],
                   password=PASSWORD)
    with app.acting_as(admin, PASSWORD):
        for user, (name, roles) in people.items():
            if user == admin:
                for role in sorted(set(roles) - {"admin"}):
                    app.grant_role(user, role)
            else:
                app.add_user(user, full_name=name, roles=roles, password=PASSWORD)
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
