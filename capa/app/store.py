"""Opening and creating a capa store from a target (SQLite file path or PostgreSQL URI)."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from eventsourcing.persistence import IntegrityError, PersistenceError

from capa.adapters.eventlog import (
    EVENTS_TABLE,
    StoreUnavailable,
    is_store_error,
    memory_env,
    store_env,
    store_exists,
)
from capa.adapters.eventlog import first_line as _first_line
from capa.adapters.files import private_file
from capa.adapters.target import StoreTarget, parse_target
from capa.app.application import CapaApplication
from capa.domain.errors import CapaError, Conflict, InvalidInput, NotFound

# The event table each back end keeps, a store's eventsourcing environment and an unreachable
# store's error come from the event-log port (capa.adapters.eventlog), and are named here too.
__all__ = ["EVENTS_TABLE", "StoreUnavailable", "open_memory_store", "open_store",
           "storage_failure", "store_env"]


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
    exists = store_exists(parsed, create=create)
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


def open_memory_store() -> CapaApplication:
    """A new, empty store held in memory by eventsourcing's recorder (its side tables in a
    private in-memory database), gone when the application is: no file, no server."""
    app = CapaApplication(env=memory_env())
    app.credentials.create()
    return app


def _quoted(target: str, parsed: StoreTarget) -> str:

    # The hint repeats the target as given, except that a password is never printed.
    shown = parsed.display if parsed.kind == "postgres" else target
    return shlex.quote(shown)


def _private_sqlite_file(path: Path) -> None:
    """Make the new store's file 0600 whatever the umask, before SQLite opens it: SQLite gives
    its -wal and -shm files the mode of the database file, so they are private too (SPEC
    §9.10). An empty file left by an earlier attempt is reused."""

    try:
        os.close(private_file(path, os.O_WRONLY | os.O_CREAT))
    except OSError as exc:
        raise InvalidInput(f"cannot create the store {path}: {exc.strerror}") from None


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
    if not is_store_error(exc):
        return None
    reason = _first_line(exc)
    if any(word in reason.lower() for word in _BUSY):
        return Conflict(f"the store was busy ({reason}); nothing was written, retry is safe")
    return StoreUnavailable(f"the store failed during the command: {reason}")
