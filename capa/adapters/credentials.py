"""Secrets and counters of the accounts, kept in the store but outside the event log (SPEC §9.3,
§9.5).

Three small tables live beside the event table:

- ``capa_credentials``: each password hash, keyed by user id and the SHA-256 of the encoded
  hash. The account events name only that digest (``credential``), so a hash is never part of
  the log, of an export or of a bundle, and a row written or changed outside capa matches no
  event and is never used.
- ``capa_login_attempts``: the run of failed password checks of each account and the checks
  under way. A check is *reserved* here, in one atomic statement, before the password is
  hashed, and only while the failures and the checks under way together stay below the limit,
  so parallel guesses cannot all be checked before one of them locks the account; parallel
  commands with the right password wait their turn instead of being refused.
- ``capa_sessions``: the last use of each session (by the SHA-256 of its token), so the idle
  limit is held by the store and not by the file the client keeps.

The same SQL serves both back ends (SQLite 3.35+ and PostgreSQL both have ``INSERT … ON
CONFLICT … RETURNING``); only the placeholder differs. The tables are made with the store and
on first use by a store that predates them.
"""

from __future__ import annotations

import contextlib
from typing import Any

from capa.adapters.eventlog import backend_of, side_datastore

CREDENTIALS, ATTEMPTS, SESSIONS = "capa_credentials", "capa_login_attempts", "capa_sessions"
TABLES = (CREDENTIALS, ATTEMPTS, SESSIONS)

_SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {CREDENTIALS} (user_id TEXT NOT NULL, digest TEXT NOT NULL, "
    "password_hash TEXT NOT NULL, PRIMARY KEY (user_id, digest))",
    f"CREATE TABLE IF NOT EXISTS {ATTEMPTS} (user_id TEXT PRIMARY KEY, "
    "failures INTEGER NOT NULL, checking INTEGER NOT NULL DEFAULT 0, "
    "checking_since DOUBLE PRECISION NOT NULL DEFAULT 0)",
    f"CREATE TABLE IF NOT EXISTS {SESSIONS} (token_sha256 TEXT PRIMARY KEY, "
    "user_id TEXT NOT NULL, last_used DOUBLE PRECISION NOT NULL)",
)


def credential_store(recorder: Any) -> CredentialStore:
    """The implementation for a store's back end, over its event recorder's own connections
    (an in-memory store's are those of its private SQLite database)."""
    if backend_of(recorder) == "postgres":
        return PostgresCredentialStore(side_datastore(recorder))
    return SqliteCredentialStore(side_datastore(recorder))


class CredentialStore:
    """The port: one instance per open store. The statements are written for both back ends;
    an implementation says how its driver marks a parameter and names a missing table."""

    #: Words of the back end's error for a statement on a table that does not exist.
    MISSING_TABLE = ""

    def __init__(self, datastore: Any) -> None:
        self._datastore = datastore

    # -- plumbing --------------------------------------------------------------------------

    def _sql(self, text: str) -> str:
        return text

    def create(self) -> None:
        """Make the tables if they are missing (a new store, or one of an earlier release)."""
        with self._datastore.transaction(commit=True) as cursor:
            for statement in _SCHEMA:
                cursor.execute(statement)

    def _run(self, text: str, params: tuple[Any, ...], *, commit: bool) -> list[Any]:
        # A store of an earlier release gains the tables on the first command that needs them;
        # a current store pays nothing for that (no look-up before each statement).
        for attempt in (1, 2):
            try:
                with self._datastore.transaction(commit=commit) as cursor:
                    cursor.execute(self._sql(text), params)
                    returns = text.startswith("SELECT") or " RETURNING " in text
                    return list(cursor.fetchall()) if returns else []
            except Exception as exc:
                text_of = str(exc)
                missing = self.MISSING_TABLE in text_of and any(t in text_of for t in TABLES)
                if attempt == 2 or not missing:
                    raise
            # Another command may make them at the same moment: the statement, tried again,
            # says whether they are there now.
            with contextlib.suppress(Exception):
                self.create()
        raise AssertionError("unreachable")

    def _write(self, text: str, params: tuple[Any, ...]) -> list[Any]:
        return self._run(text, params, commit=True)

    def _read(self, text: str, params: tuple[Any, ...]) -> Any:
        rows = self._run(text, params, commit=False)
        return rows[0] if rows else None

    # -- password hashes -------------------------------------------------------------------

    def put_hash(self, user_id: str, digest: str, password_hash: str) -> None:
        """Keep a hash under its digest. Written before the event that names it, so a failed
        save leaves only a row that no event names."""
        self._write(f"INSERT INTO {CREDENTIALS} (user_id, digest, password_hash) "
                    "VALUES (?, ?, ?) ON CONFLICT DO NOTHING", (user_id, digest, password_hash))

    def get_hash(self, user_id: str, digest: str) -> str | None:
        row = self._read(f"SELECT password_hash FROM {CREDENTIALS} WHERE user_id = ? "
                         "AND digest = ?", (user_id, digest))
        return None if row is None else str(row["password_hash"])

    def all_hashes(self) -> list[tuple[str, str, str]]:
        """Every kept hash as (user id, digest, hash), for copying a store."""
        rows = self._run(f"SELECT user_id, digest, password_hash FROM {CREDENTIALS} "
                         "ORDER BY user_id, digest", (), commit=False)
        return [(str(r["user_id"]), str(r["digest"]), str(r["password_hash"])) for r in rows]

    def drop_other_hashes(self, user_id: str, digest: str) -> None:
        """Forget the hashes an account no longer uses (after its event named a new one)."""
        self._write(f"DELETE FROM {CREDENTIALS} WHERE user_id = ? AND digest <> ?",
                    (user_id, digest))

    # -- failed password checks ------------------------------------------------------------

    def reserve_check(self, user_id: str, limit: int, seed: int, now: float,
                      stale: float) -> str:
        """Reserve one password check, atomically: "go" (check it, then `settle_check`),
        "locked" (the run already holds `limit` failures: do not check) or "busy" (checks under
        way could fill the run: wait and ask again). `seed` is the run the events show, for an
        account without a row yet; a reservation older than `stale` seconds (its command died)
        no longer counts."""
        reserve = (
            f"UPDATE {ATTEMPTS} SET checking = (CASE WHEN checking_since < ? THEN 0 "
            "ELSE checking END) + 1, checking_since = ? WHERE user_id = ? AND failures + "
            "(CASE WHEN checking_since < ? THEN 0 ELSE checking END) < ? RETURNING failures")
        params = (now - stale, now, user_id, now - stale, limit)
        if self._write(reserve, params):
            return "go"
        row = self._read(f"SELECT failures FROM {ATTEMPTS} WHERE user_id = ?", (user_id,))
        if row is None:
            self._write(f"INSERT INTO {ATTEMPTS} (user_id, failures) VALUES (?, ?) "
                        "ON CONFLICT DO NOTHING", (user_id, min(seed, limit)))
            if self._write(reserve, params):
                return "go"
            row = self._read(f"SELECT failures FROM {ATTEMPTS} WHERE user_id = ?", (user_id,))
        return "locked" if row is not None and int(row["failures"]) >= limit else "busy"

    def settle_check(self, user_id: str, *, failed: bool) -> int:
        """End a reserved check: a failure lengthens the run, a correct password ends it.
        Returns the run's length afterwards (the number of this failure in its run)."""
        rows = self._write(
            f"UPDATE {ATTEMPTS} SET failures = {'failures + 1' if failed else '0'}, "
            "checking = CASE WHEN checking > 0 THEN checking - 1 ELSE 0 END "
            "WHERE user_id = ? RETURNING failures", (user_id,))
        return int(rows[0]["failures"]) if rows else 0

    def release_check(self, user_id: str) -> None:
        """Give back a reserved check that was never made (the command failed first)."""
        self._write(f"UPDATE {ATTEMPTS} SET checking = CASE WHEN checking > 0 THEN "
                    "checking - 1 ELSE 0 END WHERE user_id = ?", (user_id,))

    def clear_attempts(self, user_id: str) -> None:
        """An unlock ends the run."""
        self._write(f"INSERT INTO {ATTEMPTS} (user_id, failures) VALUES (?, 0) "
                    "ON CONFLICT (user_id) DO UPDATE SET failures = 0", (user_id,))

    # -- sessions --------------------------------------------------------------------------

    def open_session(self, token_sha256: str, user_id: str, now: float) -> None:
        self._write(f"INSERT INTO {SESSIONS} (token_sha256, user_id, last_used) VALUES (?, ?, ?)",
                    (token_sha256, user_id, now))

    def use_session(self, token_sha256: str, user_id: str, now: float, idle: float,
                    skew: float, refresh: float) -> bool | None:
        """Whether a session is live (True), idle (False) or unknown to the store (None): live
        when last used in the store within `idle` seconds (and not more than `skew` seconds
        ahead of now). Its last use moves to now when it is `refresh` seconds old or more, so
        commands in quick succession only read; the idle limit is then counted from up to
        `refresh` seconds early, never late."""
        row = self._read(f"SELECT last_used FROM {SESSIONS} WHERE token_sha256 = ? "
                         "AND user_id = ?", (token_sha256, user_id))
        if row is None:
            return None
        last = float(row["last_used"])
        if not now - idle < last <= now + skew:
            return False
        if now - last >= refresh:
            self._write(f"UPDATE {SESSIONS} SET last_used = ? WHERE token_sha256 = ?",
                        (now, token_sha256))
        return True

    def close_session(self, token_sha256: str) -> None:
        self._write(f"DELETE FROM {SESSIONS} WHERE token_sha256 = ?", (token_sha256,))



class SqliteCredentialStore(CredentialStore):
    """SQLite 3.35+ (`INSERT … ON CONFLICT … RETURNING`); each write is one statement, so it
    takes the file's write lock at once and never upgrades a read lock."""

    MISSING_TABLE = "no such table"


class PostgresCredentialStore(CredentialStore):
    """PostgreSQL: the same statements with psycopg's placeholders; an upsert or update locks
    the account's row until it commits, so parallel reservations are counted one by one."""

    MISSING_TABLE = "does not exist"

    def _sql(self, text: str) -> str:
        return text.replace("?", "%s")
