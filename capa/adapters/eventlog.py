"""Read-only look-ups on the event table that eventsourcing's recorder API does not offer."""

from __future__ import annotations

from typing import Any
from uuid import UUID


def positions_of(recorder: Any, record_id: UUID) -> dict[int, int]:
    """Global log position (notification id) of each version of one record."""
    table = recorder.events_table_name
    if type(recorder).__module__ == "eventsourcing.sqlite":
        with recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(
                f"SELECT originator_version, rowid FROM {table} WHERE originator_id=?",
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
