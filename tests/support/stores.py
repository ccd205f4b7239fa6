"""A store of the application on either back end, for the tests that drive the application.

    store = Store(store_target)          # a SQLite file or a PostgreSQL database
    app = store.create()                 # initialised, with the people of the plant
    with store.acting(app, REPORTER):    # act as someone, password at hand for signing (R10)
        app.nonconformities.raise_nc(...)
    again = store.app()                  # opened again, as a fresh process would
    store.close()                        # every application it opened

The fixtures `store` (an empty one on the test's back end) and `app` (that store, created with
the plant) are registered by tests/integration/conftest.py; a test module elsewhere imports them
from here.
"""

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
from tests.support.backends import create_store, query
from tests.support.cast import PASSWORD, PLANT, Cast


def has_accounts() -> bool:
    """Whether this build keeps user accounts (SPEC §2); then commands need a password."""
    return "password" in inspect.signature(Identity.initialise).parameters


class Store:
    """One store (a SQLite file or a PostgreSQL database); `app()` opens it, as a fresh process
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

    def create(self, cast: Cast = PLANT) -> CapaApplication:
        """Initialise the store and add every user of the cast with their roles."""
        app = create_store(self.target, cast)
        self._opened.append(app)
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


def cli_env(store: Store, user: str) -> dict[str, str]:
    """Environment for a command-line run against `store` as `user`."""
    return {"CAPA_DB": store.target, "CAPA_USER": user, "CAPA_PASSWORD": PASSWORD}


@pytest.fixture
def store(store_target: str) -> Iterator[Store]:
    created = Store(store_target)
    yield created
    created.close()


@pytest.fixture
def app(store: Store) -> CapaApplication:
    return store.create()
