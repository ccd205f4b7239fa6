"""The audit ledger: the Merkle leaf of every stored event, kept in the store and caught up.

Every stored event, in global order, is one leaf (capa.audit.leaves). The ledger's tables
(capa.adapters.ledger) live next to the events, in the same database:

- one row per leaf (position, notification id, record id, version, leaf hash). It is a locator,
  not a proof: with it a verification names the first event that no longer hashes as it did.
  The proof is the signed checkpoints, which an attacker cannot recompute.
- the tree size and its frontier, so catching up hashes only the events written since, and the
  root at ``size`` needs no rehashing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from capa.adapters.ledger import LedgerRow, LedgerTables
from capa.audit.errors import UnreadableEvent
from capa.audit.leaves import StoredEvent, leaf_hashes
from capa.audit.merkle import HASH_SIZE, TreeBuilder

__all__ = ["Ledger", "checked"]

_BATCH = 5000
# The human ref of each record, noted when the ledger first sees it, so that a report can still
# name a record whose first event was later deleted or altered.
_REF = re.compile(rb'"ref":"([^"\\]{1,80})"')


def checked(rows: Sequence[Any], first: int,
            name_of: Callable[[str], str | None] | None = None) -> list[StoredEvent]:
    """Rows (notification id, record hex, version, topic, state) as StoredEvents, the first at
    ordinal position `first`; UnreadableEvent for a state that is not bytes. One cheap type
    test per row: this runs once per event of the log (P3)."""
    if all(type(r[4]) is bytes for r in rows):
        return rows if isinstance(rows, list) else list(rows)
    out: list[StoredEvent] = []
    for position, r in enumerate(rows, start=first):
        state = r[4]
        if isinstance(state, memoryview):
            state = bytes(state)
        elif type(state) is not bytes:
            record = str(r[1])
            kind = {str: "TEXT", int: "an INTEGER", float: "a REAL"}.get(type(state), "NULL") \
                if state is None or isinstance(state, str | int | float) else type(state).__name__
            raise UnreadableEvent(position, (name_of(record) if name_of else None) or record,
                                  int(r[2]), kind)
        out.append((r[0], r[1], r[2], r[3], state))
    return out


class Ledger:
    """The ledger of one capa application's event store (SQLite or PostgreSQL)."""

    def __init__(self, app: Any) -> None:
        self.tables = LedgerTables(app.recorder)

    def state(self) -> TreeBuilder:
        """The tree as the ledger last recorded it (size and frontier)."""
        size, blob = self.tables.state()
        frontier = [blob[i:i + HASH_SIZE] for i in range(0, len(blob), HASH_SIZE)]
        return TreeBuilder.restore(size, frontier)

    def catch_up(self) -> TreeBuilder:
        """Hash every event written since the ledger's last leaf; return the tree after it.

        Each batch commits with a compare-and-set on the size, so two processes catching up at
        once never record a position twice: the loser rolls back and carries on from the
        winner's size.
        """
        while True:
            tree = self.state()
            after = self.tables.last_notification_id() if tree.size else 0
            batch = checked(self.tables.read_batch(after, _BATCH), tree.size + 1, self.name_of)
            if not batch:
                return tree
            start = tree.size
            leaves = leaf_hashes(batch, start + 1)
            tree.extend(leaves)
            rows = [(offset, event[0], event[1], event[2], leaf)
                    for offset, event, leaf in zip(range(start + 1, start + 1 + len(batch)),
                                                   batch, leaves, strict=True)]
            names = [(event[1], found.group(1).decode("utf-8", "replace"))
                     for event in batch if event[2] == 1 and (found := _REF.search(event[4]))]
            # Landed or not (another process moved first), carry on from the recorded size.
            self.tables.commit(start, tree.size, b"".join(tree.frontier), rows, names)

    def name_of(self, record_hex: str) -> str | None:
        """The ref the ledger noted for a record when it first saw it."""
        return self.tables.name_of(record_hex)

    def events(self, chunk: int = 4096) -> Iterator[list[StoredEvent]]:
        """Every stored event in global order, in chunks, from one consistent snapshot."""
        position = 1
        for rows in self.tables.stream(chunk):
            yield checked(rows, position, self.name_of)
            position += len(rows)

    def sqlite_path(self) -> str | None:
        """The SQLite file of the store (None for PostgreSQL or an in-memory store)."""
        return self.tables.sqlite_path()

    def rows(self, chunk: int = 4096) -> Iterator[list[LedgerRow]]:
        """Every ledger row in position order, in chunks."""
        return self.tables.rows(chunk)

    def row(self, position: int) -> LedgerRow | None:
        return self.tables.row(position)

    def positions_of(self, record_hex: str) -> list[LedgerRow]:
        """The ledger rows of one record, in position order."""
        return self.tables.positions_of(record_hex)

    def leaf_hashes(self, size: int) -> bytes:
        """The first ``size`` leaf hashes packed into one bytes object (32 bytes each)."""
        out = bytearray()
        for chunk in self.rows(chunk=20000):
            for r in chunk:
                if r.position > size:
                    return bytes(out)
                out += r.leaf_hash
        return bytes(out)
