"""Opening and creating a capa store from a target (SQLite file path or PostgreSQL URI)."""

from __future__ import annotations

from pathlib import Path

from capa.app.service import CapaApplication
from capa.domain.errors import InvalidInput, NotFound


def _sqlite_env(path: str) -> dict[str, str]:
    return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": path,
            "SQLITE_LOCK_TIMEOUT": "30"}


def open_store(target: str, *, create: bool = False) -> CapaApplication:
    """Open an existing store; only `create=True` (capa init) may bring a new one into being."""
    path = Path(target)
    if create:
        if path.exists():
            raise InvalidInput(f"a store already exists at {target}")
        if not path.parent.exists():
            raise NotFound(f"folder {str(path.parent)!r} does not exist")
    elif not path.is_file():
        raise NotFound(f"no capa store at {target}; create one with: capa --db {target} init")
    return CapaApplication(env=_sqlite_env(str(path)))
