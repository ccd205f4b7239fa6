"""Secrets and counters of the accounts, kept in the store but outside the event log (SPEC §9.3,
§9.5).

Three small tables live beside the event table:

- ``capa_credentials``: each password hash, keyed by user id and the SHA-256 of the encoded
  hash. The account events name only that digest (``credential``), so a hash is never part of
  the log, of an export or of a bundle, and a row written or changed outside capa matches no
  event and is never used.
- ``capa_login_attempts``: the run of failed password checks of each account. A check is
  *reserved* here, in one atomic statement, before the password is hashed, so that parallel
  guesses cannot all be checked before one of them locks the account.
- ``capa_sessions``: the last use of each session (by the SHA-256 of its token), so the idle
  limit is held by the store and not by the file the client keeps.

The same SQL serves both back ends (SQLite 3.35+ and PostgreSQL both have ``INSERT … ON
CONFLICT … RETURNING``); only the placeholder differs. The tables are made with the store and
on first use by a store that predates them.
"""

from __future__ import annotations

from typing import Any

CREDENTIALS, ATTEMPTS, SESSIONS = "capa_credentials", "capa_login_attempts", "capa_sessions"
TABLES = (CREDENTIALS, ATTEMPTS, SESSIONS)

_SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {CREDENTIALS} (user_id TEXT NOT NULL, digest TEXT NOT NULL, "
    "password_hash TEXT NOT NULL, PRIMARY KEY (user_id, digest))",
    f"CREATE TABLE IF NOT EXISTS {ATTEMPTS} (user_id TEXT PRIMARY KEY, "
    "failures INTEGER NOT NULL)",
    f"CREATE TABLE IF NOT EXISTS {SESSIONS} (token_sha256 TEXT PRIMARY KEY, "
    "user_id TEXT NOT NULL, last_used DOUBLE PRECISION NOT NULL)",
)


class CredentialStore:
    """The port: one instance per open store, over the event recorder's own connections."""

    def __init__(self, recorder: Any) -> None:
        self._datastore = recorder.datastore
        self._sqlite = type(recorder).__module__ == "eventsourcing.sqlite"
        self._ready = False

    # -- plumbing --------------------------------------------------------------------------

    def _sql(self, text: str) -> str:
        return text if self._sqlite else text.replace("?", "%s")

    def create(self) -> None:
        """Make the tables if they are missing (a new store, or one of an earlier release)."""
        with self._datastore.transaction(commit=True) as cursor:
            for statement in _SCHEMA:
                cursor.execute(statement)
        self._ready = True

    def _ensure(self) -> None:
        # One read per process decides; a store of an earlier release gains the tables on the
        # first command that needs them, and a current store is never written to for this.
        if self._ready:
            return
        with self._datastore.transaction(commit=False) as cursor:
            if self._sqlite:
                cursor.execute("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' "
                               f"AND name IN {TABLES!r}")
            else:
                cursor.execute("SELECT count(*) AS n FROM pg_tables WHERE schemaname = "
                               f"current_schema() AND tablename IN {TABLES!r}")
            found = int(cursor.fetchone()["n"])
        if found < len(TABLES):
            self.create()
        self._ready = True

    def _write(self, text: str, params: tuple[Any, ...]) -> list[Any]:
        self._ensure()
        with self._datastore.transaction(commit=True) as cursor:
            cursor.execute(self._sql(text), params)
            return list(cursor.fetchall()) if "RETURNING" in text else []

    def _read(self, text: str, params: tuple[Any, ...]) -> Any:
        self._ensure()
        with self._datastore.transaction(commit=False) as cursor:
            cursor.execute(self._sql(text), params)
            return cursor.fetchone()

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
        self._ensure()
        with self._datastore.transaction(commit=False) as cursor:
            cursor.execute(f"SELECT user_id, digest, password_hash FROM {CREDENTIALS} "
                           "ORDER BY user_id, digest")
            return [(str(r["user_id"]), str(r["digest"]), str(r["password_hash"]))
                    for r in cursor.fetchall()]

    def drop_other_hashes(self, user_id: str, digest: str) -> None:
        """Forget the hashes an account no longer uses (after its event named a new one)."""
        self._write(f"DELETE FROM {CREDENTIALS} WHERE user_id = ? AND digest <> ?",
                    (user_id, digest))

    # -- failed password checks ------------------------------------------------------------

    def reserve_attempt(self, user_id: str, limit: int, seed: int) -> int | None:
        """Count one more password check of a run, atomically: its number (1..limit), or None
        when the run already holds `limit` checks and this one must not be made. `seed` is the
        run the events show, for an account whose row does not exist yet."""
        first = min(seed, limit - 1) + 1 if seed < limit else None
        if first is None:
            self._write(f"INSERT INTO {ATTEMPTS} (user_id, failures) VALUES (?, ?) "
                        "ON CONFLICT DO NOTHING", (user_id, limit))
            return None
        rows = self._write(
            f"INSERT INTO {ATTEMPTS} (user_id, failures) VALUES (?, ?) ON CONFLICT (user_id) "
            f"DO UPDATE SET failures = {ATTEMPTS}.failures + 1 WHERE {ATTEMPTS}.failures < ? "
            "RETURNING failures", (user_id, first, limit))
        return int(rows[0]["failures"]) if rows else None

    def clear_attempts(self, user_id: str) -> None:
        """A correct password or an unlock ends the run."""
        self._write(f"INSERT INTO {ATTEMPTS} (user_id, failures) VALUES (?, 0) "
                    "ON CONFLICT (user_id) DO UPDATE SET failures = 0", (user_id,))

    # -- sessions --------------------------------------------------------------------------

    def open_session(self, token_sha256: str, user_id: str, now: float) -> None:
        self._write(f"INSERT INTO {SESSIONS} (token_sha256, user_id, last_used) VALUES (?, ?, ?)",
                    (token_sha256, user_id, now))

    def use_session(self, token_sha256: str, user_id: str, now: float, idle: float,
                    skew: float) -> bool:
        """Mark a session used now if its last use in the store is within `idle` seconds (and
        not more than `skew` seconds ahead of now); False when it is unknown or idle."""
        rows = self._write(
            f"UPDATE {SESSIONS} SET last_used = ? WHERE token_sha256 = ? AND user_id = ? "
            "AND last_used > ? AND last_used <= ? RETURNING user_id",
            (now, token_sha256, user_id, now - idle, now + skew))
        return bool(rows)

    def close_session(self, token_sha256: str) -> None:
        self._write(f"DELETE FROM {SESSIONS} WHERE token_sha256 = ?", (token_sha256,))
