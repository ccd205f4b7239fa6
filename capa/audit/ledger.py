"""The audit ledger: the Merkle leaf of every stored event, kept in the store and caught up.

Every stored event, in global order, is one RFC 6962 leaf (capa.audit.merkle.event_leaf_hash)
over its *ordinal* position (1, 2, 3, ... in notification order), the stored originator id as
32-character hex, the stored version, the stored topic and the exact stored state bytes.
Ordinal rather than notification id because PostgreSQL sequences leave gaps on rolled-back
inserts, while a bundle's positions must run 1, 2, 3 for an offline verifier.

Two tables live next to the events, in the same database:

- ``capa_ledger(position, notification_id, record_id, version, leaf_hash)``: one row per leaf.
  It is a locator, not a proof: with it a verification names the first event that no longer
  hashes as it did. The proof is the signed checkpoints, which an attacker cannot recompute.
- ``capa_ledger_state(id = 1, size, frontier)``: the tree size and its frontier, so catching up
  hashes only the events written since, and the root at ``size`` needs no rehashing.

Reading the log is done with plain SQL tuples rather than eventsourcing ``Notification`` objects:
building a UUID and a dataclass per event costs more than hashing it, and SPEC §7 P3 asks
verification to keep up with raw hashing.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from capa.audit.merkle import HASH_SIZE, TreeBuilder
from capa.domain.errors import IntegrityFailure

__all__ = ["LEAF_HASH_PREFIX", "Ledger", "LedgerRow", "StoredEvent", "leaf_of"]

_BATCH = 5000
#: What every leaf hash starts with: RFC 6962's 0x00 and merkle.LEAF_PREFIX.
LEAF_HASH_PREFIX = b"\x00capa-leaf-v1\n"
_sha256 = hashlib.sha256

#: (notification id, record id as 32 hex chars, version, topic, stored state bytes)
StoredEvent = tuple[int, str, int, str, bytes]


def leaf_of(position: int, event: StoredEvent) -> bytes:
    """The leaf hash of one stored event at an ordinal position.

    The same bytes as capa.audit.merkle.event_leaf_hash, written out here because verification
    calls it once per event and the argument checks there would cost a third of the run. Ids are
    hex and topics module paths, so neither can hold the newline that would make it ambiguous;
    a forged one still changes the hash, which is all a verification needs.
    """
    _, record_id, version, topic, state = event
    return _sha256(b"".join((LEAF_HASH_PREFIX, f"{position}\n{record_id}\n{version}\n{topic}\n"
                             .encode(), state))).digest()


class UnreadableEvent(IntegrityFailure):
    """A stored event whose state is not the bytes capa writes (e.g. a SQLite TEXT value): it
    was written past capa. Exit 6, worded like capa.audit.verify.TamperDetected."""

    def __init__(self, position: int, record: str, version: int, kind: str) -> None:
        super().__init__(f"integrity check failed: position {position} ({record} version "
                         f"{version}): mismatch: the stored state is {kind}, not the bytes capa "
                         "writes; the event was written past capa")
        self.position, self.record, self.version = position, record, version


def checked(rows: Sequence[Any], first: int, name_of: Any = None) -> list[StoredEvent]:
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


@dataclass(frozen=True)
class LedgerRow:
    """What the ledger recorded for one position."""

    position: int
    notification_id: int
    record_id: str
    version: int
    leaf_hash: bytes


# The human ref of each record, noted when the ledger first sees it, so that a report can still
# name a record whose first event was later deleted or altered.
_NAMES_TABLE = ("CREATE TABLE IF NOT EXISTS capa_ledger_names (record_id TEXT PRIMARY KEY, "
                "ref TEXT NOT NULL)")
_REF = re.compile(rb'"ref":"([^"\\]{1,80})"')

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


class _Moved(Exception):
    """Another process extended the ledger first; start again from its new size."""


class Ledger:
    """The ledger of one capa application's event store (SQLite or PostgreSQL)."""

    def __init__(self, app: Any) -> None:
        from capa.readmodels.sql import Sql

        self._app = app
        self._recorder = app.recorder
        self.sql = Sql(app.recorder)
        self.postgres = self.sql.postgres
        self._events_table: str = app.recorder.events_table_name
        self._ready = False

    # -- schema and state ------------------------------------------------------------------

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

    def state(self) -> TreeBuilder:
        """The tree as the ledger last recorded it (size and frontier)."""
        self.ensure_schema()
        row = self.sql.query("SELECT size, frontier FROM capa_ledger_state WHERE id = 1")[0]
        blob = bytes(row["frontier"])
        frontier = [blob[i:i + HASH_SIZE] for i in range(0, len(blob), HASH_SIZE)]
        return TreeBuilder.restore(int(row["size"]), frontier)

    def last_notification_id(self) -> int:
        rows = self.sql.query("SELECT notification_id FROM capa_ledger "
                              "ORDER BY position DESC LIMIT 1")
        return int(rows[0]["notification_id"]) if rows else 0

    # -- catching up -----------------------------------------------------------------------

    def catch_up(self) -> TreeBuilder:
        """Hash every event written since the ledger's last leaf; return the tree after it.

        Each batch commits with a compare-and-set on the size, so two processes catching up at
        once never record a position twice: the loser rolls back and carries on from the
        winner's size.
        """
        self.ensure_schema()
        while True:
            tree = self.state()
            after = self.last_notification_id() if tree.size else 0
            batch = checked(self._read_batch(after, _BATCH), tree.size + 1, self.name_of)
            if not batch:
                return tree
            start = tree.size
            rows, names = [], []
            for offset, event in enumerate(batch, start=start + 1):
                leaf = leaf_of(offset, event)
                tree.append(leaf)
                rows.append((offset, event[0], event[1], event[2], leaf))
                if event[2] == 1 and (found := _REF.search(event[4])):
                    names.append((event[1], found.group(1).decode("utf-8", "replace")))
            try:
                self._commit(start, tree, rows, names)
            except _Moved:
                continue

    def _commit(self, expected: int, tree: TreeBuilder, rows: Sequence[tuple[Any, ...]],
                names: Sequence[tuple[str, str]] = ()) -> None:
        with self.sql.transaction(commit=True) as c:
            moved = c.execute("UPDATE capa_ledger_state SET size = ?, frontier = ? "
                              "WHERE id = 1 AND size = ?",
                              (tree.size, b"".join(tree.frontier), expected))
            if moved != 1:
                raise _Moved
            c.executemany("INSERT INTO capa_ledger (position, notification_id, record_id, "
                          "version, leaf_hash) VALUES (?, ?, ?, ?, ?)", rows)
            if names:
                # A forged first version of an existing record must not rename it.
                conflict = "ON CONFLICT (record_id) DO NOTHING"
                c.executemany(f"INSERT INTO capa_ledger_names (record_id, ref) VALUES (?, ?) "
                              f"{conflict}", names)

    def name_of(self, record_hex: str) -> str | None:
        """The ref the ledger noted for a record when it first saw it."""
        self.ensure_schema()
        found = self.sql.query("SELECT ref FROM capa_ledger_names WHERE record_id = ?",
                               (record_hex,))
        return str(found[0]["ref"]) if found else None

    # -- reading the log -------------------------------------------------------------------

    def _read_batch(self, after: int, limit: int) -> list[StoredEvent]:
        if self.postgres:
            statement = (f"SELECT notification_id, originator_id, originator_version, topic, "  # noqa: S608
                         f"state FROM {self._events_table} WHERE notification_id > %s "
                         "ORDER BY notification_id LIMIT %s")
            with self._recorder.datastore.transaction(commit=False) as c:
                c.execute(statement, (after, limit))
                # A state is checked by `checked`, where its position is known.
                return [(int(r["notification_id"]), r["originator_id"].hex,
                         int(r["originator_version"]), r["topic"],
                         bytes(r["state"]) if isinstance(r["state"], memoryview)
                         else r["state"]) for r in c.fetchall()]
        statement = (f"SELECT rowid, originator_id, originator_version, topic, state "  # noqa: S608
                     f"FROM {self._events_table} WHERE rowid > ? ORDER BY rowid LIMIT ?")
        with self._recorder.datastore.transaction(commit=False) as c:
            c.execute(statement, (after, limit))
            return [(int(r[0]), str(r[1]), int(r[2]), str(r[3]), r[4]) for r in c.fetchall()]

    def events(self, chunk: int = 4096) -> Iterator[list[StoredEvent]]:
        """Every stored event in global order, in chunks, from one consistent snapshot.

        On SQLite this is one plain read-only connection and one SELECT: it sees a single
        snapshot (WAL), returns plain tuples and never holds more than a chunk in memory.
        """
        position = 1
        if self.postgres or self._sqlite_path() is None:
            after = 0
            while batch := self._read_batch(after, chunk):
                yield checked(batch, position, self.name_of)
                after, position = batch[-1][0], position + len(batch)
            return
        path = self._sqlite_path()
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            cursor = db.execute(f"SELECT rowid, originator_id, originator_version, topic, "  # noqa: S608
                                f"state FROM {self._events_table} ORDER BY rowid")
            while rows := cursor.fetchmany(chunk):
                yield checked(rows, position, self.name_of)
                position += len(rows)
        finally:
            db.close()

    def sqlite_path(self) -> str | None:
        """The SQLite file of the store (None for PostgreSQL or an in-memory store)."""
        return self._sqlite_path()

    def _sqlite_path(self) -> str | None:
        datastore = self._recorder.datastore
        name = getattr(getattr(datastore, "pool", datastore), "db_name", None)
        if not name or ":memory:" in name or "mode=memory" in name:
            return None
        return str(name)

    def rows(self, chunk: int = 4096) -> Iterator[list[LedgerRow]]:
        """Every ledger row in position order, in chunks."""
        after = 0
        while True:
            found = self.sql.query("SELECT position, notification_id, record_id, version, "
                                   "leaf_hash FROM capa_ledger WHERE position > ? "
                                   "ORDER BY position LIMIT ?", (after, chunk))
            if not found:
                return
            yield [LedgerRow(int(r["position"]), int(r["notification_id"]), str(r["record_id"]),
                             int(r["version"]), bytes(r["leaf_hash"])) for r in found]
            after = int(found[-1]["position"])

    def row(self, position: int) -> LedgerRow | None:
        found = self.sql.query("SELECT position, notification_id, record_id, version, leaf_hash "
                               "FROM capa_ledger WHERE position = ?", (position,))
        if not found:
            return None
        r = found[0]
        return LedgerRow(int(r["position"]), int(r["notification_id"]), str(r["record_id"]),
                         int(r["version"]), bytes(r["leaf_hash"]))

    def positions_of(self, record_hex: str) -> list[LedgerRow]:
        """The ledger rows of one record, in position order."""
        found = self.sql.query("SELECT position, notification_id, record_id, version, leaf_hash "
                               "FROM capa_ledger WHERE record_id = ? ORDER BY position",
                               (record_hex,))
        return [LedgerRow(int(r["position"]), int(r["notification_id"]), str(r["record_id"]),
                          int(r["version"]), bytes(r["leaf_hash"])) for r in found]

    def leaf_hashes(self, size: int) -> bytes:
        """The first ``size`` leaf hashes packed into one bytes object (32 bytes each)."""
        out = bytearray()
        for chunk in self.rows(chunk=20000):
            for r in chunk:
                if r.position > size:
                    return bytes(out)
                out += r.leaf_hash
        return bytes(out)
