"""The SQLite event recorder of a capa store: eventsourcing's, with a request's idempotency key
inserted in the transaction of its events (capa.adapters.idempotency)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor

from capa.adapters.idempotency import Claim, KeyTaken, insert_statement, is_key_collision


class CapaSQLiteRecorder(SQLiteApplicationRecorder):
    """SQLiteApplicationRecorder whose saves may carry `idempotency=Claim`."""

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        try:
            return super().insert_events(stored_events, **kwargs)
        except IntegrityError as exc:
            if kwargs.get("idempotency") is not None and is_key_collision(exc):
                raise KeyTaken(str(exc)) from None
            raise

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        claim: Claim | None = kwargs.get("idempotency")
        if claim is not None:
            # First, so that a key already used stops the save before any event is written.
            c.execute(insert_statement(postgres=False), claim.row(stored_events))
        return super()._insert_events(c, stored_events, **kwargs)
