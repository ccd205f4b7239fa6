"""Reading the event log in one consistent snapshot, by position, on every back end.

A reader sees the events table (and the tables beside it) as they were when it began: a
read-only SQLite connection in one transaction (WAL gives it one snapshot while writers carry
on), one REPEATABLE READ transaction on PostgreSQL, or, for an in-memory store, a temporary
copy of the log in its private SQLite database, dropped when the reader ends.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote
from uuid import UUID

from capa.adapters.eventlog import EVENTS_TABLE, backend_of, side_datastore, sqlite_file

__all__ = ["LogReader", "log_reader"]

#: Rows read from the database at a time.
_CHUNK = 2000


class LogReader:
    """Queries on one consistent snapshot of the store, with `?` placeholders on both back ends;
    `position` names the column that holds an event's place in the log."""

    def __init__(self, cursor: Any, *, postgres: bool, events_table: str) -> None:
        self._cursor = cursor
        self.postgres = postgres
        self.events_table = events_table
        self.position = "notification_id" if postgres else "rowid"

    def _text(self, statement: str) -> str:
        return statement.replace("?", "%s") if self.postgres else statement

    def query(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._cursor.execute(self._text(statement), tuple(params))
        return [tuple(row.values()) if isinstance(row, dict) else tuple(row)
                for row in self._cursor.fetchall()]

    def stream(self, statement: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        """Rows of one query, fetched a chunk at a time."""
        if self.postgres:
            # Loaded by PostgreSQL stores only: importing the driver would cost SQLite ones.
            from psycopg.rows import tuple_row

            with self._cursor.connection.cursor(name="capa_replay",
                                                row_factory=tuple_row) as named:
                named.execute(self._text(statement), tuple(params))
                while rows := named.fetchmany(_CHUNK):
                    yield from rows
            return
        cursor = self._cursor.connection.cursor() if hasattr(self._cursor, "connection") \
            else self._cursor
        cursor.execute(statement, tuple(params))
        while rows := cursor.fetchmany(_CHUNK):
            yield from (tuple(row) for row in rows)

    def has_table(self, name: str) -> bool:
        if self.postgres:
            found = self.query("SELECT to_regclass(?)", (f"public.{name}",))
            return bool(found and found[0][0] is not None)
        return bool(self.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                               (name,)))

    def last_position(self) -> int:
        found = self.query(f"SELECT MAX({self.position}) FROM {self.events_table}")  # noqa: S608
        return int(found[0][0] or 0)


@contextmanager
def log_reader(app: Any) -> Iterator[LogReader]:
    """A reader of one consistent snapshot of the application's store."""
    recorder = app.recorder
    backend = backend_of(recorder)
    if backend == "postgres":
        with recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield LogReader(cursor, postgres=True, events_table=EVENTS_TABLE["postgres"])
        return
    if backend == "memory":
        with _memory_snapshot(recorder) as cursor:
            yield LogReader(cursor, postgres=False, events_table=EVENTS_TABLE["sqlite"])
        return
    name = sqlite_file(recorder)
    if name is None:
        with recorder.datastore.transaction(commit=False) as cursor:
            yield LogReader(cursor, postgres=False, events_table=EVENTS_TABLE["sqlite"])
        return
    # A read-only connection of its own, in one transaction: it can never write.
    db = sqlite3.connect(f"file:{quote(name)}?mode=ro", uri=True, timeout=30,
                         isolation_level=None)
    try:
        db.execute("BEGIN")
        yield LogReader(db.cursor(), postgres=False, events_table=EVENTS_TABLE["sqlite"])
    finally:
        db.close()


@contextmanager
def _memory_snapshot(recorder: Any) -> Iterator[Any]:
    """A cursor on an in-memory store's private database, in a transaction that holds a
    temporary events table copied from the log (positions kept as rowids); rolled back at the
    end, so the copy never outlives the reader."""
    with side_datastore(recorder).transaction(commit=False) as cursor:
        raw = cursor.sqlite_cursor
        table = EVENTS_TABLE["sqlite"]
        raw.execute(f"CREATE TEMP TABLE {table} (originator_id TEXT, "
                    "originator_version INTEGER, topic TEXT, state BLOB)")
        start = 1
        while batch := recorder.select_notifications(start=start, limit=_CHUNK):
            raw.executemany(
                f"INSERT INTO temp.{table} (rowid, originator_id, originator_version, topic, "  # noqa: S608
                "state) VALUES (?, ?, ?, ?, ?)",
                [(n.id, UUID(str(n.originator_id)).hex, n.originator_version, n.topic,
                  bytes(n.state)) for n in batch])
            start = batch[-1].id + 1
        yield raw
