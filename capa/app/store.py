"""Opening and creating a capa store from a target (SQLite file path or PostgreSQL URI)."""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path
from urllib.parse import quote

from eventsourcing.persistence import IntegrityError, PersistenceError

from capa.adapters.target import StoreTarget, parse_target
from capa.app.application import CapaApplication
from capa.domain.errors import CapaError, Conflict, InvalidInput, NotFound


class StoreUnavailable(NotFound):
    """The store's server cannot be reached, or refuses the connection or the credentials.
    It maps to the exit status of a missing store (3): the command found no store to work on."""


#: eventsourcing settings it would otherwise also read from the process environment (where the
#: `CAPA_`-prefixed form even wins); a capa store is configured by its target alone.
_NEUTRAL_SETTINGS = {
    "POSTGRES_SCHEMA": "",
    "POSTGRES_GET_PASSWORD_TOPIC": "",
    "POSTGRES_ENABLE_DB_FUNCTIONS": "no",
    "ORIGINATOR_ID_TYPE": "uuid",
    "APPLICATION_RECORDER_TOPIC": "",
    "TRACKING_RECORDER_TOPIC": "",
    "PROCESS_RECORDER_TOPIC": "",
    "MAPPER_TOPIC": "",
    "TRANSCODER_TOPIC": "",
    "CIPHER_TOPIC": "",
    "COMPRESSOR_TOPIC": "",
}
#: The event table each back end keeps (eventsourcing names PostgreSQL's after the application).
EVENTS_TABLE = {"sqlite": "stored_events", "postgres": f"{CapaApplication.name}_events"}
#: PostgreSQL stores save through eventsourcing's recorder, except that large saves (evidence
#: files) avoid psycopg's pipeline mode, which deadlocks on them (capa.adapters.pgrecorder).
_POSTGRES_RECORDER = "capa.adapters.pgrecorder:CapaPostgresRecorder"


def store_env(target: StoreTarget, *, create: bool) -> dict[str, str]:
    """The eventsourcing environment of a store: only `create` lets eventsourcing make tables."""
    env = {**_NEUTRAL_SETTINGS, **target.env, "CREATE_TABLE": "yes" if create else "no"}
    if target.kind == "postgres":
        env["APPLICATION_RECORDER_TOPIC"] = _POSTGRES_RECORDER
    prefix = CapaApplication.name.upper() + "_"
    return {**env, **{prefix + key: value for key, value in env.items()}}


def _target(target: str) -> StoreTarget:
    try:
        return parse_target(target)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def open_store(target: str, *, create: bool = False) -> CapaApplication:
    """Open an existing store; only `create=True` (capa init) may bring a new one into being.

    A SQLite target is a file path; a PostgreSQL target is a libpq URI naming a database that
    exists (capa creates the tables in it, never the database itself).
    """
    parsed = _target(target)
    if parsed.kind == "postgres":
        exists = _postgres_has_store(parsed)
    else:
        exists = _sqlite_has_store(parsed, create=create)
    if create and exists:
        raise InvalidInput(f"a store already exists at {parsed.display}")
    if not create and not exists:
        raise NotFound(f"no capa store at {parsed.display}; create one with: "
                       f"capa --db {_quoted(target, parsed)} init")
    if create and parsed.kind == "sqlite":
        _private_sqlite_file(Path(parsed.display))
    try:
        app = CapaApplication(env=store_env(parsed, create=create))
        if create:
            app.credentials.create()  # the tables outside the log, made with the event table
        return app
    except PersistenceError as exc:
        raise StoreUnavailable(f"cannot open the store {parsed.display}: "
                               f"{_first_line(exc)}") from None


def _quoted(target: str, parsed: StoreTarget) -> str:
    import shlex

    # The hint repeats the target as given, except that a password is never printed.
    shown = parsed.display if parsed.kind == "postgres" else target
    return shlex.quote(shown)


def _sqlite_has_store(target: StoreTarget, *, create: bool) -> bool:
    path = Path(target.display)
    if not path.exists():
        if create and not path.parent.is_dir():
            raise NotFound(f"folder {str(path.parent)!r} does not exist")
        return False
    if not path.is_file():
        raise InvalidInput(f"{target.display} is not a file")
    try:
        db = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True, timeout=30)
        try:
            found = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                               (EVENTS_TABLE["sqlite"],)).fetchone()
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise InvalidInput(f"{target.display} is not a capa store ({exc})") from None
    if found is None and path.stat().st_size > 0:
        # A file that holds other tables is someone else's database: never write capa's into it.
        raise InvalidInput(f"{target.display} is a SQLite file but not a capa store")
    return found is not None


def _private_sqlite_file(path: Path) -> None:
    """Make the new store's file 0600 whatever the umask, before SQLite opens it: SQLite gives
    its -wal and -shm files the mode of the database file, so they are private too (SPEC
    §9.10). An empty file left by an earlier attempt is reused."""
    from capa.adapters.files import private_file

    try:
        os.close(private_file(path, os.O_WRONLY | os.O_CREAT))
    except OSError as exc:
        raise InvalidInput(f"cannot create the store {path}: {exc.strerror}") from None


def _postgres_has_store(target: StoreTarget) -> bool:
    """Whether the database holds capa's event table. One short connection, separate from the
    application's pool, so that a wrong host, port, password or database name fails at once with
    libpq's own reason instead of after the pool's wait."""
    import shlex

    import psycopg

    env = target.env
    try:
        with psycopg.connect(
            dbname=env["POSTGRES_DBNAME"], host=env["POSTGRES_HOST"], port=env["POSTGRES_PORT"],
            user=env["POSTGRES_USER"], password=env["POSTGRES_PASSWORD"],
            connect_timeout=int(env["POSTGRES_CONNECT_TIMEOUT"]), autocommit=True,
        ) as conn:
            row = conn.execute("SELECT to_regclass(%s)",
                               (f"public.{EVENTS_TABLE['postgres']}",)).fetchone()
    except psycopg.Error as exc:
        reason = _first_line(exc)
        if "does not exist" in reason and "database" in reason:
            raise NotFound(
                f"no capa store at {target.display}: {reason}; create the database "
                f"(createdb {shlex.quote(env['POSTGRES_DBNAME'])}), then run: "
                f"capa --db {shlex.quote(target.display)} init"
            ) from None
        raise StoreUnavailable(f"cannot open the store {target.display}: {reason}") from None
    return row is not None and row[0] is not None


def _first_line(exc: BaseException) -> str:
    """libpq's reason without its decoration ("connection failed:", hints on later lines)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    for noise in ("connection failed: ", "FATAL:  ", "FATAL: "):
        text = text.replace(noise, "")
    return text


#: Words in a back end's message that mean another writer held the store: nothing was written.
_BUSY = ("lock timeout", "could not obtain lock", "deadlock detected", "could not serialize",
         "database is locked", "database table is locked", "lock not available")


def storage_failure(exc: BaseException) -> CapaError | None:
    """The user-facing error for a failure of the store during a command, or None when `exc`
    is not one. A busy store or a lost race is a conflict (exit 5: nothing was written, retry is
    safe); a lost or refused connection is an unavailable store (exit 3)."""
    if isinstance(exc, IntegrityError):
        return Conflict("the record changed while this command ran; nothing was written, "
                        "retry is safe")
    # psycopg is only loaded by PostgreSQL stores; importing it here would cost SQLite ones.
    psycopg = sys.modules.get("psycopg")
    if not isinstance(exc, PersistenceError) and not (
        psycopg is not None and isinstance(exc, psycopg.Error)
    ):
        return None
    reason = _first_line(exc)
    if any(word in reason.lower() for word in _BUSY):
        return Conflict(f"the store was busy ({reason}); nothing was written, retry is safe")
    return StoreUnavailable(f"the store failed during the command: {reason}")
