"""The event-log port: which back end holds a store, and everything capa asks of its event table
beyond eventsourcing's recorder API.

Three back ends sit behind it: SQLite (a file), PostgreSQL (a libpq URI) and eventsourcing's
in-memory recorder (POPO), which holds the events of a store that lives only as long as its
application, for fast service tests. The tables capa keeps beside the log (credentials, user
keys, read tables, the ledger) live in the database that holds the events; an in-memory store
keeps them in a private in-memory SQLite database of its own, so the same SQL serves all three.
"""

from __future__ import annotations

import itertools
import shlex
import sqlite3
import sys
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote
from uuid import UUID

from eventsourcing.persistence import PersistenceError, StoredEvent
from eventsourcing.sqlite import SQLiteDatastore

from capa.adapters.target import StoreTarget
from capa.domain.errors import InvalidInput, NotFound
from capa.domain.record import record_hex, record_uuid

__all__ = [
    "EVENTS_TABLE",
    "STORE_NAME",
    "Backend",
    "EventRow",
    "StoreUnavailable",
    "backend_of",
    "bulk_insert",
    "bulk_insert_joins_transaction",
    "first_line",
    "is_store_error",
    "memory_env",
    "positions_of",
    "side_datastore",
    "side_is_postgres",
    "sqlite_file",
    "store_env",
    "store_exists",
    "stored_id",
]

#: The back ends of a store.
Backend = Literal["sqlite", "postgres", "memory"]

#: The application name eventsourcing gives a capa store (its settings' prefix, and the name of
#: PostgreSQL's event table).
STORE_NAME = "capa"
#: The event table each back end keeps (eventsourcing names PostgreSQL's after the application).
EVENTS_TABLE = {"sqlite": "stored_events", "postgres": f"{STORE_NAME}_events"}

#: A stored event as a row of the events table: record id, version, topic, state bytes.
EventRow = tuple[Any, int, str, bytes]

#: eventsourcing's modules that define each back end's recorders.
_MODULES: dict[str, Backend] = {"eventsourcing.sqlite": "sqlite",
                                "eventsourcing.postgres": "postgres",
                                "eventsourcing.popo": "memory"}

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
#: PostgreSQL stores save through eventsourcing's recorder, except that large saves (evidence
#: files) avoid psycopg's pipeline mode, which deadlocks on them (capa.adapters.pgrecorder).
#: Both also insert a request's idempotency key in the transaction of its events
#: (capa.adapters.idempotency).
_RECORDERS = {"postgres": "capa.adapters.pgrecorder:CapaPostgresRecorder",
              "sqlite": "capa.adapters.sqliterecorder:CapaSQLiteRecorder"}


class StoreUnavailable(NotFound):
    """The store's server cannot be reached, or refuses the connection or the credentials.
    It maps to the exit status of a missing store (3): the command found no store to work on."""


# -- which back end ----------------------------------------------------------------------------


def backend_of(thing: Any) -> Backend:
    """The back end of a store target, an application, or an event recorder."""
    if isinstance(thing, StoreTarget):
        return thing.kind
    recorder = getattr(thing, "recorder", thing)
    for cls in type(recorder).__mro__:
        found = _MODULES.get(cls.__module__)
        if found is not None:
            return found
    raise TypeError(f"not an event recorder capa knows: {type(recorder).__qualname__}")


# -- opening -----------------------------------------------------------------------------------


def _prefixed(env: dict[str, str]) -> dict[str, str]:
    prefix = STORE_NAME.upper() + "_"
    return {**env, **{prefix + key: value for key, value in env.items()}}


def store_env(target: StoreTarget, *, create: bool) -> dict[str, str]:
    """The eventsourcing environment of a store: only `create` lets eventsourcing make tables."""
    env = {**_NEUTRAL_SETTINGS, **target.env, "CREATE_TABLE": "yes" if create else "no"}
    env["APPLICATION_RECORDER_TOPIC"] = _RECORDERS[target.kind]
    return _prefixed(env)


def memory_env() -> dict[str, str]:
    """The eventsourcing environment of a store held in memory by eventsourcing's recorder."""
    return _prefixed({**_NEUTRAL_SETTINGS, "PERSISTENCE_MODULE": "eventsourcing.popo"})


def store_exists(target: StoreTarget, *, create: bool) -> bool:
    """Whether the target holds a capa store. InvalidInput when it holds something else (a
    SQLite file that is someone else's database); NotFound when a new store's folder or
    database is missing; StoreUnavailable when the server cannot be reached."""
    if target.kind == "postgres":
        return _postgres_has_store(target)
    return _sqlite_has_store(target, create=create)


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


def _postgres_has_store(target: StoreTarget) -> bool:
    """Whether the database holds capa's event table. One short connection, separate from the
    application's pool, so that a wrong host, port, password or database name fails at once with
    libpq's own reason instead of after the pool's wait."""
    # Loaded by PostgreSQL stores only: importing the driver would cost every SQLite command.
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
        reason = first_line(exc)
        if "does not exist" in reason and "database" in reason:
            raise NotFound(
                f"no capa store at {target.display}: {reason}; create the database "
                f"(createdb {shlex.quote(env['POSTGRES_DBNAME'])}), then run: "
                f"capa --db {shlex.quote(target.display)} init"
            ) from None
        raise StoreUnavailable(f"cannot open the store {target.display}: {reason}") from None
    return row is not None and row[0] is not None


def first_line(exc: BaseException) -> str:
    """libpq's reason without its decoration ("connection failed:", hints on later lines)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    for noise in ("connection failed: ", "FATAL:  ", "FATAL: "):
        text = text.replace(noise, "")
    return text


def is_store_error(exc: BaseException) -> bool:
    """Whether `exc` is a failure of the store: eventsourcing's, or one the PostgreSQL driver
    raised past eventsourcing."""
    if isinstance(exc, PersistenceError):
        return True
    # psycopg is only loaded by PostgreSQL stores; importing it here would cost SQLite ones.
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(exc, psycopg.Error)


# -- tables beside the log ---------------------------------------------------------------------

#: The private database of each in-memory store's side tables, for as long as its recorder lives.
_SIDE: weakref.WeakKeyDictionary[Any, SQLiteDatastore] = weakref.WeakKeyDictionary()
_SIDE_NAMES = itertools.count(1)


def side_datastore(recorder: Any) -> Any:
    """The eventsourcing datastore that holds the tables capa keeps beside the event log: the
    recorder's own (one transaction can cover both), or for an in-memory store a private
    in-memory SQLite database made on first use."""
    if backend_of(recorder) != "memory":
        return recorder.datastore
    found = _SIDE.get(recorder)
    if found is None:
        # A shared-cache memory database lives while one connection to it is open: the pool
        # keeps its connection for as long as the store's recorder lives.
        name = f"file:capa-memory-{id(recorder):x}-{next(_SIDE_NAMES)}?mode=memory&cache=shared"
        found = _SIDE[recorder] = SQLiteDatastore(name, pool_size=1, max_overflow=0)
    return found


def side_is_postgres(recorder: Any) -> bool:
    """Whether the side tables take psycopg's `%s` placeholders (else SQLite's `?`)."""
    return backend_of(recorder) == "postgres"


def sqlite_file(recorder: Any) -> str | None:
    """The file of a SQLite store, for a connection of its own (a read-only snapshot); None
    for PostgreSQL, for an in-memory store, or for a SQLite database held in memory."""
    if backend_of(recorder) != "sqlite":
        return None
    datastore = recorder.datastore
    name = getattr(getattr(datastore, "pool", datastore), "db_name", None)
    if not name or ":memory:" in name or "mode=memory" in name:
        return None
    return str(name)


# -- reading the log ---------------------------------------------------------------------------


def positions_of(recorder: Any, record_id: UUID) -> dict[int, int]:
    """Global log position (notification id) of each version of one record."""
    backend = backend_of(recorder)
    if backend == "memory":
        return {item.originator_version: item.id
                for item in recorder.select_notifications(start=None, limit=1 << 62)
                if UUID(str(item.originator_id)) == record_id}
    table = recorder.events_table_name
    if backend == "sqlite":
        with recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(
                f"SELECT originator_version, rowid FROM {table} WHERE originator_id=?",  # noqa: S608
                (record_id.hex,),
            )
            return {int(row[0]): int(row[1]) for row in cursor.fetchall()}
    with recorder.datastore.transaction(commit=False) as cursor:
        cursor.execute(
            f"SELECT originator_version, notification_id FROM {table} "  # noqa: S608
            "WHERE originator_id=%s",
            (record_id,),
        )
        return {int(row["originator_version"]): int(row["notification_id"])
                for row in cursor.fetchall()}


# -- writing pre-serialised events -------------------------------------------------------------


def stored_id(recorder: Any) -> Callable[[str], Any]:
    """How a row of `bulk_insert` gives the id of the record a reference names: SQLite keeps
    hex text (made without a UUID object: a bulk import makes thousands), others UUIDs."""
    return record_hex if backend_of(recorder) == "sqlite" else record_uuid


def bulk_insert_joins_transaction(recorder: Any) -> bool:
    """Whether `bulk_insert` runs its `then` in the insert's own transaction (SQLite only)."""
    return backend_of(recorder) == "sqlite"


def bulk_insert(recorder: Any, rows: Sequence[EventRow],
                then: Callable[[Any], None] | None = None) -> None:
    """Insert new events, already serialised, in one transaction: all or none.

    On SQLite, one `executemany` of the recorder's own statement (its `insert_events` runs a
    statement per event to learn each new row's position, which a bulk insert never needs),
    followed by `then(cursor)` in the same transaction; elsewhere the recorder's
    `insert_events`, and `then` is not called (see `bulk_insert_joins_transaction`)."""
    if not bulk_insert_joins_transaction(recorder):
        recorder.insert_events([StoredEvent(*row) for row in rows])
        return
    with recorder.datastore.transaction(commit=True) as cursor:
        cursor.executemany(recorder.insert_events_statement, rows)
        if then is not None:
            then(cursor)
