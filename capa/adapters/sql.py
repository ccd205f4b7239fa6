"""A small adapter over the event store's own connection, so the tables capa keeps beside the log
(read tables, user keys, the ledger) live in the same database, and the same SQL runs on SQLite
and PostgreSQL (and on the private SQLite database of an in-memory store)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from capa.adapters.eventlog import side_datastore, side_is_postgres


class Sql:
    """Runs `?`-style SQL on the database of the tables beside the log, whichever the back end.

    Reads and writes go through the recorder's datastore so a read-table update and the tracked
    position commit in one transaction on the very database that holds the events.
    """

    def __init__(self, recorder: Any) -> None:
        self._datastore = side_datastore(recorder)
        self.postgres = side_is_postgres(recorder)

    def _text(self, statement: str) -> str:
        return statement.replace("?", "%s") if self.postgres else statement

    @contextmanager
    def transaction(self, *, commit: bool) -> Iterator[Cursor]:
        with self._datastore.transaction(commit=commit) as cursor:
            yield Cursor(cursor, self)

    def query(self, statement: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self.transaction(commit=False) as cursor:
            return cursor.query(statement, params)


class Cursor:
    """One transaction's cursor; rows come back as dicts on both back ends."""

    def __init__(self, cursor: Any, sql: Sql) -> None:
        self._cursor = cursor
        self._sql = sql

    def execute(self, statement: str, params: Sequence[Any] = ()) -> int:
        self._cursor.execute(self._sql._text(statement), tuple(params))
        # eventsourcing's SQLite cursor wrapper hides rowcount; the driver's cursor has it.
        raw = getattr(self._cursor, "sqlite_cursor", self._cursor)
        return int(raw.rowcount)

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._cursor.executemany(self._sql._text(statement), [tuple(r) for r in rows])

    def query(self, statement: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        self._cursor.execute(self._sql._text(statement), tuple(params))
        rows = self._cursor.fetchall()
        return [dict(row) for row in rows]
