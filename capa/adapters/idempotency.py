"""Idempotency keys of the server's writes, kept beside the event log (SPEC §11).

A request that carries an `Idempotency-Key` and writes events claims the key in the very
transaction that inserts those events: the store's recorders (capa.adapters.sqliterecorder,
capa.adapters.pgrecorder) insert the key's row first, then the events, so either both are
committed or neither is, whatever happens to the server process. A second writer with the same
key collides on the row's primary key, and its events are rolled back with it (`KeyTaken`).

The answer the request gave is stored on the row once it is known (a second, small
transaction). A row without an answer means the server stopped between the two: its events are
in the store, and the row names the records and versions they made, from which the answer is
given again.

``capa_idempotency``: user id, key, the operation, a SHA-256 fingerprint of the request (the
passwords it carried left out), when, the records written (JSON) and the answer (JSON or NULL).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from capa.adapters.eventlog import side_datastore, side_is_postgres

TABLE = "capa_idempotency"

_SCHEMA = (f"CREATE TABLE IF NOT EXISTS {TABLE} (user_id TEXT NOT NULL, key TEXT NOT NULL, "
           "operation TEXT NOT NULL, fingerprint TEXT NOT NULL, created_at TEXT NOT NULL, "
           "records TEXT NOT NULL, response TEXT, PRIMARY KEY (user_id, key))")
_INSERT = (f"INSERT INTO {TABLE} (user_id, key, operation, fingerprint, created_at, records) "
           "VALUES (?, ?, ?, ?, ?, ?)")


class KeyTaken(Exception):  # noqa: N818 - what happened, as the recorders say it
    """Another request with the same user and key committed first; nothing of this save was
    written. Deliberately not an IntegrityError: a record number lost to a race is retried with
    the next number, a key is never retried."""


@dataclass
class Claim:
    """The key a request's first save commits with its events."""

    user: str
    key: str
    operation: str
    fingerprint: str
    #: Set once a save committed the key (a later save of the same request carries none).
    committed: bool = False

    def row(self, stored_events: Sequence[StoredEvent]) -> tuple[str, ...]:
        records = [[UUID(str(e.originator_id)).hex, e.originator_version] for e in stored_events]
        created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        return (self.user, self.key, self.operation, self.fingerprint, created,
                json.dumps(records))


def insert_statement(postgres: bool) -> str:
    return _INSERT.replace("?", "%s") if postgres else _INSERT


def is_key_collision(exc: BaseException) -> bool:
    """Whether a recorder's IntegrityError is the key's row colliding (SQLite names the table,
    PostgreSQL the table's primary key)."""
    return TABLE in str(exc)


@dataclass(frozen=True)
class KeptRequest:
    """A key already used: what it was used for and, once known, the answer it got."""

    operation: str
    fingerprint: str
    records: list[tuple[str, int]]
    response: Any | None


class IdempotencyKeys:
    """The table, over the store's own connections."""

    def __init__(self, recorder: Any) -> None:
        self._datastore = side_datastore(recorder)
        self._postgres = side_is_postgres(recorder)

    def _sql(self, text: str) -> str:
        return text.replace("?", "%s") if self._postgres else text

    def create(self) -> None:
        with self._datastore.transaction(commit=True) as cursor:
            cursor.execute(_SCHEMA)

    def find(self, user: str, key: str) -> KeptRequest | None:
        with self._datastore.transaction(commit=False) as cursor:
            cursor.execute(self._sql(f"SELECT operation, fingerprint, records, response "  # noqa: S608
                                     f"FROM {TABLE} WHERE user_id = ? AND key = ?"), (user, key))
            row = cursor.fetchone()
        if row is None:
            return None
        operation, fingerprint, records, response = (row[0], row[1], row[2], row[3]) \
            if not isinstance(row, dict) else (row["operation"], row["fingerprint"],
                                              row["records"], row["response"])
        return KeptRequest(operation, fingerprint,
                           [(str(r), int(v)) for r, v in json.loads(records)],
                           None if response is None else json.loads(response))

    def answer(self, user: str, key: str, response: Any) -> None:
        """Keep the answer of the request that committed the key, for its retries."""
        with self._datastore.transaction(commit=True) as cursor:
            cursor.execute(self._sql(f"UPDATE {TABLE} SET response = ? "  # noqa: S608
                                     "WHERE user_id = ? AND key = ?"),
                           (json.dumps(response), user, key))
