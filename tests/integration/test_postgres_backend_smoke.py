"""A real PostgreSQL server, configured only through a store URI, stores and serves events."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from uuid import UUID

import psycopg
import pytest
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.postgres import PostgresFactory

from capa.adapters.target import parse_target
from tests.support.postgres import (
    PostgresUnavailable,
    create_database,
    drop_database,
    embedded_postgres,
    unix_socket_uri,
)


class Gauge(Aggregate):
    @event("Registered")
    def __init__(self, tag: str) -> None:
        self.tag = tag

    @event("Relabelled")
    def relabel(self, tag: str) -> None:
        self.tag = tag


class Gauges(Application[UUID]):
    def register(self, tag: str) -> UUID:
        gauge = Gauge(tag)
        self.save(gauge)
        return gauge.id

    def relabel(self, gauge_id: UUID, tag: str) -> None:
        gauge: Gauge = self.repository.get(gauge_id)
        gauge.relabel(tag)
        self.save(gauge)

    def tag(self, gauge_id: UUID) -> str:
        gauge: Gauge = self.repository.get(gauge_id)
        return gauge.tag


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    with contextlib.ExitStack() as stack:
        try:
            uri = stack.enter_context(embedded_postgres())
        except PostgresUnavailable as exc:
            pytest.skip(f"no PostgreSQL server: {exc}")
        yield uri


@pytest.fixture
def store_uri(postgres_server: str) -> Iterator[str]:
    uri = create_database(postgres_server)
    yield uri
    drop_database(uri)


@contextlib.contextmanager
def gauges(uri: str) -> Iterator[Gauges]:
    app = Gauges(env=parse_target(uri).env)
    try:
        yield app
    finally:
        app.close()


def test_events_are_saved_reloaded_and_listed_in_order(store_uri: str) -> None:
    with gauges(store_uri) as app:
        assert isinstance(app.factory, PostgresFactory)
        gauge_id = app.register("PG-1")
        app.relabel(gauge_id, "PG-1a")

    # A second application, with nothing in memory, reads what the first one wrote.
    with gauges(store_uri) as app:
        assert app.tag(gauge_id) == "PG-1a"
        assert app.repository.get(gauge_id, version=1).tag == "PG-1"
        notifications = app.notification_log.select(start=1, limit=10)
        assert [n.id for n in notifications] == [1, 2]
        assert [n.originator_id for n in notifications] == [gauge_id, gauge_id]
        assert [n.topic.rpartition(":")[2] for n in notifications] == [
            "Gauge.Registered",
            "Gauge.Relabelled",
        ]


def test_events_land_in_the_database_the_uri_names(store_uri: str) -> None:
    with gauges(store_uri) as app:
        gauge_id = app.register("PG-2")

    with psycopg.connect(store_uri) as conn:
        rows = conn.execute(
            "SELECT originator_id, originator_version FROM gauges_events"
        ).fetchall()
    assert rows == [(gauge_id, 1)]


def test_a_unix_socket_uri_reaches_the_same_store(store_uri: str) -> None:
    with gauges(store_uri) as app:
        gauge_id = app.register("PG-3")

    socket_uri = unix_socket_uri(store_uri)
    assert parse_target(socket_uri).env["POSTGRES_HOST"].startswith("/")
    with gauges(socket_uri) as app:
        assert app.tag(gauge_id) == "PG-3"


def test_each_test_gets_an_empty_database(store_uri: str) -> None:
    with gauges(store_uri) as app:
        assert app.notification_log.select(start=1, limit=10) == []
