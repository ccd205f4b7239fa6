"""Fixtures for the application on a real store, on SQLite and on PostgreSQL: a store factory
and its users. Every test using `store` runs once per back end (see tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from capa.adapters.target import parse_target
from capa.app.application import CapaApplication
from capa.app.store import open_store
from tests.support.backends import query

PASSWORD = "correct-horse-battery-staple"

#: user id -> (full name, roles); the first user initialises the store and administers it.
Cast = dict[str, tuple[str, list[str]]]


class Store:
    """One store (a SQLite file or a PostgreSQL database); `app()` opens it, as a fresh process
    would."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.backend = parse_target(target).kind
        self._opened: list[CapaApplication] = []

    @property
    def path(self) -> Path:
        """The SQLite file of the store (for the tests that are about the file itself)."""
        assert self.backend == "sqlite", "a PostgreSQL store has no file"
        return Path(self.target)

    def create(self, cast: Cast) -> CapaApplication:
        """Initialise the store and add every user of the cast with their roles."""
        app = open_store(self.target, create=True)
        self._opened.append(app)
        admin = next(iter(cast))
        app.identity.initialise("Northwind Medical Devices", admin=admin, full_name=cast[admin][0],
                                password=PASSWORD)
        with self.acting(app, admin):
            for user, (name, roles) in cast.items():
                if user == admin:
                    for role in set(roles) - {"admin"}:
                        app.identity.grant_role(user, role)
                else:
                    app.identity.add_user(user, full_name=name, roles=roles, password=PASSWORD)
        return app

    def app(self) -> CapaApplication:
        app = open_store(self.target)
        self._opened.append(app)
        return app

    @staticmethod
    def acting(app: CapaApplication, user: str) -> AbstractContextManager[None]:
        """Act as `user`, password at hand for signing (R10)."""
        return app.acting_as(user, PASSWORD)

    def event_count(self) -> int:
        return int(self.rows("SELECT COUNT(*) FROM stored_events")[0][0])

    def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """A statement in SQLite's words, run on either back end (tests.support.backends.query)."""
        return query(self.target, sql, *args)

    def close(self) -> None:
        for app in self._opened:
            app.close()
        self._opened.clear()


@pytest.fixture
def store(store_target: str) -> Iterator[Store]:
    created = Store(store_target)
    yield created
    created.close()
