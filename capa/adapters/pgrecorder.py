"""The PostgreSQL event recorder of a capa store: eventsourcing's, except for large saves.

eventsourcing sends a save (lock the table, notify, insert the events) in psycopg's pipeline
mode. With a large parameter, such as an evidence file of a few MiB or more inside its event,
the pipeline deadlocks: the client waits for the results while the server still waits for the
rest of the statement (the backend sits in ClientRead), and the command hangs for good, past any
lock or statement timeout. A save whose events hold more than PIPELINE_LIMIT bytes is therefore
sent as plain statements on one connection in one transaction: the same lock, the same
notification, the same INSERT and the same errors, one round trip each.

A save may also carry a request's idempotency key (`idempotency=Claim`), whose row is inserted
in the transaction of its events (capa.adapters.idempotency), on either path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import retry
from psycopg import Cursor
from psycopg.rows import DictRow

from capa.adapters.idempotency import Claim, KeyTaken, insert_statement, is_key_collision

#: Saves up to this many bytes of event state keep eventsourcing's pipelined path.
PIPELINE_LIMIT = 1024 * 1024


class CapaPostgresRecorder(PostgresApplicationRecorder):
    """PostgresApplicationRecorder that sends large saves without pipeline mode."""

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        try:
            return self._insert(stored_events, **kwargs)
        except IntegrityError as exc:
            if kwargs.get("idempotency") is not None and is_key_collision(exc):
                raise KeyTaken(str(exc)) from None
            raise

    def _insert(self, stored_events: Sequence[StoredEvent], **kwargs: Any
                ) -> Sequence[int] | None:
        if self.datastore.enable_db_functions or (
            sum(len(event.state) for event in stored_events) <= PIPELINE_LIMIT
        ):
            ids: Sequence[int] | None = super().insert_events(stored_events, **kwargs)
        else:
            ids = self._insert_events_unpipelined(stored_events, **kwargs)
        return ids

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def _insert_events_unpipelined(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            self._insert_events(curs, stored_events, **kwargs)
            self._insert_stored_events(curs, stored_events, **kwargs)
            return self._fetch_ids_after_insert_events(curs, stored_events, **kwargs)

    def _insert_stored_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        super()._insert_stored_events(curs, stored_events, **kwargs)
        claim: Claim | None = kwargs.get("idempotency")
        if claim is not None:
            # After the events, under the table's lock, in the same pipeline: its error is the
            # first the pipeline's sync reports when the key is taken (a statement sent before
            # the lock would only make the later ones fail as "pipeline aborted"). A cursor of
            # its own: this one still holds the new events' positions. Never a prepared
            # statement: psycopg would count one whose PREPARE was aborted with the pipeline of a
            # failed save as prepared, and every later save on the connection would fail.
            with curs.connection.cursor() as own:
                own.execute(insert_statement(postgres=True), claim.row(stored_events),
                            prepare=False)
