"""Fixtures for the application on a real store, on SQLite and on PostgreSQL: `store` and `app`
(tests/support/stores.py). Every test using `store` runs once per back end (see
tests/conftest.py)."""

from __future__ import annotations

from tests.support.stores import app, store

__all__ = ["app", "store"]
