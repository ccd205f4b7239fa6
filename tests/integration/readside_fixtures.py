"""Stores with a cast of users for the read-side tests (read models, import, reports), on SQLite
and on PostgreSQL: every test using `store` runs once per back end (see tests/conftest.py)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from capa.adapters.target import parse_target
from capa.app.application import CapaApplication
from capa.app.identity import Identity
from capa.app.store import open_store
from tests.support.backends import query

PASSWORD = "correct-horse-battery-staple"
QUALITY_MANAGER = "mhernandez"
QUALITY_ENGINEER = "jchen"
OWNER = "apatel"
TECHNICIAN = "lnguyen"
VERIFIER = "rkowalski"
REPORTER = "tokafor"
AUDITOR = "sbauer"

CAST: dict[str, tuple[str, list[str]]] = {
    QUALITY_MANAGER: ("Maria Hernandez", ["admin", "quality"]),
    QUALITY_ENGINEER: ("Jun Chen", ["quality"]),
    OWNER: ("Anil Patel", ["owner"]),
    TECHNICIAN: ("Linh Nguyen", ["owner"]),
    VERIFIER: ("Roman Kowalski", ["quality"]),
    REPORTER: ("Tolu Okafor", ["reporter"]),
    AUDITOR: ("Sabine Bauer", ["auditor"]),
}


def has_accounts() -> bool:
    """Whether this build keeps user accounts (SPEC §2); then commands need a password."""
    return "password" in inspect.signature(Identity.initialise).parameters


class Store:
    """One store (a SQLite file or a PostgreSQL database); `app()` opens it as a fresh process
    would."""

    def __init__(self, target: str | Path) -> None:
        self.target = str(target)
        self.backend = parse_target(self.target).kind
        self._opened: list[CapaApplication] = []

    @property
    def path(self) -> Path:
        """The SQLite file of the store (for the tests that are about the file itself)."""
        assert self.backend == "sqlite", "a PostgreSQL store has no file"
        return Path(self.target)

    def create(self) -> CapaApplication:
        app = open_store(self.target, create=True)
        self._opened.append(app)
        if has_accounts():
            with app.acting_as(QUALITY_MANAGER):
                app.identity.initialise("Northwind Medical Devices", admin=QUALITY_MANAGER,
                                         # type: ignore[call-arg]
                                        full_name=CAST[QUALITY_MANAGER][0], password=PASSWORD)
            with self.acting(app, QUALITY_MANAGER):
                for user, (name, roles) in CAST.items():
                    if user != QUALITY_MANAGER:
                        app.identity.add_user(user, full_name=name, roles=roles,
                                               # type: ignore[attr-defined]
                                              password=PASSWORD)
                app.identity.grant_role(QUALITY_MANAGER, "quality")  # type: ignore[attr-defined]
        else:
            with app.acting_as(QUALITY_MANAGER):
                app.identity.initialise("Northwind Medical Devices")
        return app

    def app(self) -> CapaApplication:
        app = open_store(self.target)
        self._opened.append(app)
        return app

    @staticmethod
    def acting(app: CapaApplication, user: str) -> AbstractContextManager[None]:
        if has_accounts():
            return app.acting_as(user, PASSWORD)  # type: ignore[call-arg]
        return app.acting_as(user)

    def event_count(self) -> int:
        return int(self.rows("SELECT COUNT(*) FROM stored_events")[0][0])

    def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """A statement in SQLite's words, run on either back end (tests.support.backends.query)."""
        return query(self.target, sql, *args)

    def close(self) -> None:
        for app in self._opened:
            app.close()
        self._opened.clear()


def cli_env(store: Store, user: str) -> dict[str, str]:
    """Environment for a CLI run as `user`."""
    return {"CAPA_DB": store.target, "CAPA_USER": user, "CAPA_PASSWORD": PASSWORD}


@pytest.fixture
def store(store_target: str) -> Iterator[Store]:
    created = Store(store_target)
    yield created
    created.close()


@pytest.fixture
def app(store: Store) -> CapaApplication:
    return store.create()
