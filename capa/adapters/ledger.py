"""The audit ledger's tables, next to the events in the same database (SQLite or PostgreSQL; an
in-memory store keeps them in its private side database, capa.adapters.eventlog).

- ``capa_ledger(position, notification_id, record_id, version, leaf_hash)``: one row per leaf;
- ``capa_ledger_state(id = 1, size, frontier)``: the tree size and its frontier;
- ``capa_ledger_names(record_id, ref)``: the human ref of each record, noted when the ledger
  first saw it.

This module holds the SQL and the database connections; what the rows mean (leaf hashes, the
tree, catching up) is capa.audit.ledger's. Stored events are read as plain tuples rather than
eventsourcing ``Notification`` objects: building a UUID and a dataclass per event costs more than
hashing it, and SPEC §7 P3 asks verification to keep up with raw hashing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from capa.adapters.eventlog import backend_of
from capa.adapters.sql import Sql

__all__ = ["LedgerRow", "LedgerTables"]

_NAMES_TABLE = ("CREATE TABLE IF NOT EXISTS capa_ledger_names (record_id TEXT PRIMARY KEY, "
                "ref TEXT NOT NULL)")

_SQLITE_TABLES = (
    "CREATE TABLE IF NOT EXISTS capa_ledger (position INTEGER PRIMARY KEY, "
    "notification_id INTEGER NOT NULL, record_id TEXT NOT NULL, version INTEGER NOT NULL, "
    "leaf_hash BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS capa_ledger_state (id INTEGER PRIMARY KEY CHECK (id = 1), "
    "size INTEGER NOT NULL, frontier BLOB NOT NULL)",
    _NAMES_TABLE,
)
_POSTGRES_TABLES = (
    "CREATE TABLE IF NOT EXISTS capa_ledger (position BIGINT PRIMARY KEY, "
    "notification_id BIGINT NOT NULL, record_id TEXT NOT NULL, version BIGINT NOT NULL, "
    "leaf_hash BYTEA NOT NULL)",
    "CREATE TABLE IF NOT EXISTS capa_ledger_state (id INTEGER PRIMARY KEY CHECK (id = 1), "
    "size BIGINT NOT NULL, frontier BYTEA NOT NULL)",
    _NAMES_TABLE,
)
_ROW = "SELECT position, notification_id, record_id, version, leaf_hash FROM capa_ledger"


@dataclass(frozen=True)
class LedgerRow:
    """What the ledger recorded for one position."""

    position: int
    notification_id: int
    record_id: str
    version: int
    leaf_hash: bytes


def _ledger_row(r: dict[str, Any]) -> LedgerRow:
    return LedgerRow(int(r["position"]), int(r["notification_id"]), str(r["record_id"]),
                     int(r["version"]), bytes(r["leaf_hash"]))


class LedgerTables:
    """The ledger tables of one application's event store, and raw reads of its events."""

    def __init__(self, recorder: Any) -> None:
        self._recorder = recorder
        self.sql = Sql(recorder)
        self.postgres = self.sql.postgres
        # eventsourcing's in-memory recorder holds its events in Python objects, not a table.
        self.memory = backend_of(recorder) == "memory"
        self._events_table: str = getattr(recorder, "events_table_name", "")
        self._ready = False

    def ensure_schema(self) -> None:
        if self._ready:
            return
        with self.sql.transaction(commit=True) as c:
            for statement in _POSTGRES_TABLES if self.postgres else _SQLITE_TABLES:
                c.execute(statement)
            if not c.query("SELECT size FROM capa_ledger_state WHERE id = 1"):
                c.execute("INSERT INTO capa_ledger_state (id, size, frontier) VALUES (1, 0, ?)",
                          (b"",))
        self._ready = True

    def state(self) -> tuple[int, bytes]:
        """The tree size and its frontier hashes (concatenated) as last recorded."""
        self.ensure_schema()
        row = self.sql.query("SELECT size, frontier FROM capa_ledger_state WHERE id = 1")[0]
        return int(row["size"]), bytes(row["frontier"])

    def last_notification_id(self) -> int:
        rows = self.sql.query("SELECT notification_id FROM capa_ledger "
                              "ORDER BY position DESC LIMIT 1")
        return int(rows[0]["notification_id"]) if rows else 0

    def commit(self, expected: int, size: int, frontier: bytes,
               rows: Sequence[tuple[Any, ...]], names: Sequence[tuple[str, str]] = ()) -> bool:
        """Record leaf rows and the new state, if the size is still ``expected`` (a
        compare-and-set); False, with nothing written, when another process moved it first."""
        try:
            with self.sql.transaction(commit=True) as c:
                moved = c.execute("UPDATE capa_ledger_state SET size = ?, frontier = ? "
                                  "WHERE id = 1 AND size = ?", (size, frontier, expected))
                if moved != 1:
                    raise _Moved  # leaving the block by an exception rolls it back
                c.executemany("INSERT INTO capa_ledger (position, notification_id, record_id, "
                              "version, leaf_hash) VALUES (?, ?, ?, ?, ?)", rows)
                if names:
                    # A forged first version of an existing record must not rename it.
                    c.executemany("INSERT INTO capa_ledger_names (record_id, ref) VALUES (?, ?) "
                                  "ON CONFLICT (record_id) DO NOTHING", names)
        except _Moved:
            return False
        return True

    def name_of(self, record_hex: str) -> str | None:
        """The ref the ledger noted for a record when it first saw it."""
        self.ensure_schema()
        found = self.sql.query("SELECT ref FROM capa_ledger_names WHERE record_id = ?",
                               (record_hex,))
        return str(found[0]["ref"]) if found else None

    # -- the stored events, as plain tuples ------------------------------------------------

    def read_batch(self, after: int, limit: int) -> list[tuple[Any, ...]]:
        """Up to ``limit`` stored events after notification id ``after``: (notification id,
        record id as 32 hex chars, version, topic, state as stored)."""
        if self.memory:
            return [(int(n.id), n.originator_id.hex, int(n.originator_version), n.topic,
                     n.state) for n in self._recorder.select_notifications(start=after + 1,
                                                                          limit=limit)]
        if self.postgres:
            statement = (f"SELECT notification_id, originator_id, originator_version, topic, "  # noqa: S608
                         f"state FROM {self._events_table} WHERE notification_id > %s "
                         "ORDER BY notification_id LIMIT %s")
            with self._recorder.datastore.transaction(commit=False) as c:
                c.execute(statement, (after, limit))
                # A state is checked by the caller, where its position is known.
                return [(int(r["notification_id"]), r["originator_id"].hex,
                         int(r["originator_version"]), r["topic"],
                         bytes(r["state"]) if isinstance(r["state"], memoryview)
                         else r["state"]) for r in c.fetchall()]
        statement = (f"SELECT rowid, originator_id, originator_version, topic, state "  # noqa: S608
                     f"FROM {self._events_table} WHERE rowid > ? ORDER BY rowid LIMIT ?")
        with self._recorder.datastore.transaction(commit=False) as c:
            c.execute(statement, (after, limit))
            return [(int(r[0]), str(r[1]), int(r[2]), str(r[3]), r[4]) for r in c.fetchall()]

    def stream(self, chunk: int = 4096) -> Iterator[list[tuple[Any, ...]]]:
        """Every stored event in global order, in chunks, from one consistent snapshot.

        On SQLite this is one plain read-only connection and one SELECT: it sees a single
        snapshot (WAL), returns plain tuples and never holds more than a chunk in memory.
        """
        path = self.sqlite_path()
        if self.postgres or path is None:
            after = 0
            while batch := self.read_batch(after, chunk):
                yield batch
                after = batch[-1][0]
            return
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            cursor = db.execute(f"SELECT rowid, originator_id, originator_version, topic, "  # noqa: S608
                                f"state FROM {self._events_table} ORDER BY rowid")
            while rows := cursor.fetchmany(chunk):
                yield rows
        finally:
            db.close()

    def sqlite_path(self) -> str | None:
        """The SQLite file of the store (None for PostgreSQL or an in-memory store)."""
        if self.memory:
            return None
        datastore = self._recorder.datastore
        name = getattr(getattr(datastore, "pool", datastore), "db_name", None)
        if not name or ":memory:" in name or "mode=memory" in name:
            return None
        return str(name)

    # -- the ledger rows -------------------------------------------------------------------

    def rows(self, chunk: int = 4096) -> Iterator[list[LedgerRow]]:
        """Every ledger row in position order, in chunks."""
        after = 0
        while True:
            found = self.sql.query(f"{_ROW} WHERE position > ? ORDER BY position LIMIT ?",
                                   (after, chunk))
            if not found:
                return
            yield [_ledger_row(r) for r in found]
            after = int(found[-1]["position"])

    def row(self, position: int) -> LedgerRow | None:
        found = self.sql.query(f"{_ROW} WHERE position = ?", (position,))
        return _ledger_row(found[0]) if found else None

    def positions_of(self, record_hex: str) -> list[LedgerRow]:
        """The ledger rows of one record, in position order."""
        found = self.sql.query(f"{_ROW} WHERE record_id = ? ORDER BY position", (record_hex,))
        return [_ledger_row(r) for r in found]


class _Moved(Exception):
    """Another process extended the ledger first."""
