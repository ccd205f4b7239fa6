"""Where users' encrypted signing keys live: a table of the store outside the event log.

The table holds only private keys encrypted under a key derived from each user's password
(capa.app.keyring); the public keys, and the endorsements that make them trusted, are in the
account events. Nothing here is trusted by verification: replacing a row can at most stop its
user from signing, never let anyone sign as them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from capa.adapters.sql import Sql

CREATE_TABLE = ("CREATE TABLE IF NOT EXISTS capa_user_keys (user_id TEXT PRIMARY KEY, "
          "key_id TEXT NOT NULL, wrapped TEXT NOT NULL)")


@dataclass(frozen=True)
class WrappedKey:
    """One user's private key as stored: its key id and the encrypted key (keyring's format)."""

    user_id: str
    key_id: str
    wrapped: str


class UserKeys(Protocol):
    """The port: read and write one user's wrapped key."""

    def get(self, user_id: str) -> WrappedKey | None: ...

    def put(self, key: WrappedKey) -> None: ...

    def all(self) -> list[WrappedKey]: ...


class SqlUserKeys:
    """SQLite and PostgreSQL alike (capa.adapters.sql translates the placeholders); the
    table is created on first use, so stores of earlier releases gain it when first written."""

    def __init__(self, recorder: Any) -> None:
        self._sql = Sql(recorder)
        self._ready = False

    def _ensure(self) -> None:
        if not self._ready:
            with self._sql.transaction(commit=True) as cursor:
                cursor.execute(CREATE_TABLE)
            self._ready = True

    def get(self, user_id: str) -> WrappedKey | None:
        self._ensure()
        rows = self._sql.query("SELECT user_id, key_id, wrapped FROM capa_user_keys "
                               "WHERE user_id = ?", (user_id,))
        if not rows:
            return None
        row = rows[0]
        return WrappedKey(str(row["user_id"]), str(row["key_id"]), str(row["wrapped"]))

    def put(self, key: WrappedKey) -> None:
        self._ensure()
        with self._sql.transaction(commit=True) as cursor:
            # One statement on both back ends: the newest wrapping of a user's key replaces
            # the one before (a password change re-encrypts the same key).
            cursor.execute("DELETE FROM capa_user_keys WHERE user_id = ?", (key.user_id,))
            cursor.execute("INSERT INTO capa_user_keys (user_id, key_id, wrapped) "
                           "VALUES (?, ?, ?)", (key.user_id, key.key_id, key.wrapped))


    def all(self) -> list[WrappedKey]:
        self._ensure()
        rows = self._sql.query("SELECT user_id, key_id, wrapped FROM capa_user_keys "
                               "ORDER BY user_id")
        return [WrappedKey(str(r["user_id"]), str(r["key_id"]), str(r["wrapped"]))
                for r in rows]


def user_keys_for(recorder: Any) -> UserKeys:
    return SqlUserKeys(recorder)
