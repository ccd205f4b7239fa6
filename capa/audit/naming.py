"""Naming records in what a verification reports: NC-2026-0001, USER-jchen, ... not hex ids."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from capa.audit.ledger import Ledger

__all__ = ["RecordNames"]


class RecordNames:
    """The human ref of each record, looked up once per record for the life of this object
    (one verification): as the ledger noted it when it first saw the record, else from the
    record's first event, else its hex id."""

    def __init__(self, app: Any, ledger: Ledger | None = None) -> None:
        self._app = app
        self._ledger = ledger if ledger is not None else Ledger(app)
        self._names: dict[str, str] = {}

    def __call__(self, record_hex: str) -> str:
        if record_hex not in self._names:
            self._names[record_hex] = self._ledger.name_of(record_hex) or self._first_ref(
                record_hex)
        return self._names[record_hex]

    def _first_ref(self, record_hex: str) -> str:
        try:
            stored = self._app.recorder.select_events(UUID(hex=record_hex), lte=1, limit=1)
            if stored:
                first: Any = self._app.mapper.to_domain_event(stored[0])
                return str(getattr(first, "ref", None) or record_hex)
        except Exception:  # noqa: BLE001 - a damaged event names its record by id
            pass
        return record_hex
