"""Fixtures for the application on a real SQLite file: a store factory and its users."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from capa.app.service import CapaApplication
from capa.app.store import open_store

PASSWORD = "correct-horse-battery-staple"

#: user id -> (full name, roles); the first user initialises the store and administers it.
Cast = dict[str, tuple[str, list[str]]]


class Store:
    """One SQLite store file; `app()` opens it, as a fresh process would."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._opened: list[CapaApplication] = []

    def create(self, cast: Cast) -> CapaApplication:
        """Initialise the store and add every user of the cast with their roles."""
        app = open_store(str(self.path), create=True)
        self._opened.append(app)
        admin = next(iter(cast))
        app.initialise("Northwind Medical Devices", admin=admin, full_name=cast[admin][0],
                       password=PASSWORD)
        with self.acting(app, admin):
            for user, (name, roles) in cast.items():
                if user == admin:
                    for role in set(roles) - {"admin"}:
                        app.grant_role(user, role)
                else:
                    app.add_user(user, full_name=name, roles=roles, password=PASSWORD)
        return app

    def app(self) -> CapaApplication:
        app = open_store(str(self.path))
        self._opened.append(app)
        return app

    @staticmethod
    def acting(app: CapaApplication, user: str) -> AbstractContextManager[None]:
        """Act as `user`, password at hand for signing (R10)."""
        return app.acting_as(user, PASSWORD)

    def event_count(self) -> int:
        with sqlite3.connect(self.path) as db:
            return int(db.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0])

    def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.path) as db:
            return db.execute(sql, args).fetchall()

    def close(self) -> None:
        for app in self._opened:
            app.close()
        self._opened.clear()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    created = Store(tmp_path / "capa.db")
    yield created
    created.close()
