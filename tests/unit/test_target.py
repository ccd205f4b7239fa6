"""Store targets: SQLite paths and libpq URIs become eventsourcing settings for their back end."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from capa.adapters.target import StoreTarget, parse_target


def test_a_path_is_a_sqlite_store() -> None:
    target = parse_target("stores/capa.db")

    assert target == StoreTarget(
        kind="sqlite",
        display="stores/capa.db",
        env={
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": "stores/capa.db",
            "SQLITE_LOCK_TIMEOUT": "30",
        },
    )


@pytest.mark.parametrize(
    "path", ["/var/lib/capa/qms.db", "Qualité 2025.db", "./postgres.db", "C:\\capa\\capa.db"]
)
def test_any_other_path_is_taken_as_it_is(path: str) -> None:
    target = parse_target(path)

    assert target.kind == "sqlite"
    assert target.display == path
    assert target.env["SQLITE_DBNAME"] == path


def test_a_full_uri_sets_every_connection_setting() -> None:
    target = parse_target("postgresql://capa:s3cret@db.example.com:5433/quality")

    assert target.kind == "postgres"
    assert target.display == "postgresql://capa:***@db.example.com:5433/quality"
    assert target.env == {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": "quality",
        "POSTGRES_HOST": "db.example.com",
        "POSTGRES_PORT": "5433",
        "POSTGRES_USER": "capa",
        "POSTGRES_PASSWORD": "s3cret",
        "POSTGRES_CONNECT_TIMEOUT": "10",
        "POSTGRES_LOCK_TIMEOUT": "30",
        "POSTGRES_POOL_SIZE": "1",
        "POSTGRES_MAX_OVERFLOW": "2",
    }


def test_postgres_scheme_is_an_alias() -> None:
    target = parse_target("postgres://capa@localhost/quality")

    assert target.kind == "postgres"
    assert target.display == "postgresql://capa@localhost/quality"
    assert target.env["POSTGRES_PORT"] == "5432"
    assert target.env["POSTGRES_PASSWORD"] == ""


def test_percent_encoded_parts_are_decoded() -> None:
    target = parse_target("postgresql://qa%20lead:p%40ss%3Aw%2Frd%25@localhost/caf%C3%A9")

    assert target.env["POSTGRES_USER"] == "qa lead"
    assert target.env["POSTGRES_PASSWORD"] == "p@ss:w/rd%"
    assert target.env["POSTGRES_DBNAME"] == "café"


def test_the_password_is_never_shown() -> None:
    target = parse_target("postgresql://capa:hunter2@localhost/quality?password=hunter3")

    assert target.env["POSTGRES_PASSWORD"] == "hunter3"
    assert "hunter" not in target.display
    assert "hunter" not in repr(target)


def test_a_unix_socket_folder_is_given_as_host_parameter() -> None:
    target = parse_target("postgresql://capa@/quality?host=/run/postgresql")

    assert target.display == "postgresql://capa@/quality?host=/run/postgresql"
    assert target.env["POSTGRES_HOST"] == "/run/postgresql"
    assert target.env["POSTGRES_PORT"] == "5432"
    assert target.env["POSTGRES_USER"] == "capa"


def test_a_unix_socket_folder_may_be_percent_encoded_in_place_of_the_host() -> None:
    target = parse_target("postgresql://%2Fvar%2Frun%2Fpostgresql:5433/quality")

    assert target.env["POSTGRES_HOST"] == "/var/run/postgresql"
    assert target.env["POSTGRES_PORT"] == "5433"
    assert target.display == "postgresql:///quality?host=/var/run/postgresql&port=5433"


def test_no_host_means_libpq_default_socket() -> None:
    target = parse_target("postgresql:///quality")

    assert target.env["POSTGRES_HOST"] == ""
    assert target.env["POSTGRES_USER"] == ""


def test_an_ipv6_host_is_written_in_brackets() -> None:
    target = parse_target("postgresql://capa@[::1]:5433/quality")

    assert target.env["POSTGRES_HOST"] == "::1"
    assert target.env["POSTGRES_PORT"] == "5433"
    assert target.display == "postgresql://capa@[::1]:5433/quality"


def test_query_parameters_override_the_uri_parts() -> None:
    target = parse_target(
        "postgresql://capa@localhost:5432/quality?port=6543&dbname=audit&connect_timeout=3"
    )

    assert target.env["POSTGRES_PORT"] == "6543"
    assert target.env["POSTGRES_DBNAME"] == "audit"
    assert target.env["POSTGRES_CONNECT_TIMEOUT"] == "3"


def test_the_env_opens_an_eventsourcing_postgres_factory_without_a_server() -> None:
    from eventsourcing.persistence import InfrastructureFactory
    from eventsourcing.postgres import PostgresFactory

    env = parse_target("postgresql://capa:pw@127.0.0.1:1/quality").env
    # Building the factory reads every setting but does not connect yet.
    factory = InfrastructureFactory.construct(env=env)
    try:
        assert isinstance(factory, PostgresFactory)
        kwargs = factory.datastore.pool.kwargs
        assert isinstance(kwargs, dict)
        assert (kwargs["host"], kwargs["port"], kwargs["dbname"]) == ("127.0.0.1", "1", "quality")
        assert factory.datastore.pool.min_size == 1
        assert factory.datastore.pool.max_size == 3
    finally:
        factory.close()


@pytest.mark.parametrize(
    ("target", "complaint"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("capa\x00.db", "NUL"),
        ("mysql://capa@localhost/quality", "unsupported store scheme 'mysql'"),
        ("sqlite:///capa.db", "unsupported store scheme 'sqlite'"),
        ("postgresql:/quality", "malformed"),
        ("postgresql://capa@localhost", "names no database"),
        ("postgresql://capa@localhost/", "names no database"),
        ("postgresql://capa@localhost:http/quality", "invalid port"),
        ("postgresql://capa@localhost:0/quality", "invalid port"),
        ("postgresql://capa@localhost:65536/quality", "invalid port"),
        ("postgresql://capa@localhost/quality?port=x", "invalid port"),
        ("postgresql://capa@localhost/quality?connect_timeout=soon", "connect_timeout"),
        ("postgresql://capa@localhost/quality?sslmode=require", "unsupported parameter 'sslmode'"),
        ("postgresql://capa@localhost/quality?host", "has no '=value'"),
        ("postgresql://capa@h1:5432,h2:5432/quality", "several hosts"),
        ("postgresql://capa@[::1/quality", "without ']'"),
        ("postgresql://capa@[::1]x/quality", "after ']'"),
    ],
)
def test_an_unusable_target_is_refused_in_one_line(target: str, complaint: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_target(target)

    message = str(raised.value)
    assert complaint in message
    assert "\n" not in message


def test_a_refusal_does_not_show_the_password() -> None:
    with pytest.raises(ValueError) as raised:
        parse_target("postgresql://capa:hunter2@localhost:bad/quality")

    assert "hunter2" not in str(raised.value)


_parts = st.text(
    # Surrogates cannot be percent-encoded and NUL is refused: neither can be in a real URI.
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), min_size=1
)


@given(user=_parts, password=_parts, dbname=_parts, port=st.integers(1, 65535))
def test_any_percent_encoded_parts_come_back_as_they_were(
    user: str, password: str, dbname: str, port: int
) -> None:
    uri = (
        f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}"
        f"@db.example.com:{port}/{quote(dbname, safe='')}"
    )

    target = parse_target(uri)

    assert target.env["POSTGRES_USER"] == user
    assert target.env["POSTGRES_PASSWORD"] == password
    assert target.env["POSTGRES_DBNAME"] == dbname
    assert target.env["POSTGRES_PORT"] == str(port)
    assert parse_target(target.display).env["POSTGRES_DBNAME"] == dbname


@given(st.text())
def test_any_text_is_a_target_or_a_value_error(text: str) -> None:
    try:
        target = parse_target(text)
    except ValueError as exc:
        assert "\n" not in str(exc)
    else:
        assert target.kind in ("sqlite", "postgres")


def test_pgpassword_is_used_when_the_uri_has_no_password(monkeypatch: pytest.MonkeyPatch) -> None:
    """libpq would ignore PGPASSWORD (eventsourcing always passes a password): capa reads it."""
    monkeypatch.setenv("PGPASSWORD", "from-env")
    target = parse_target("postgresql://capa@db.example.com/quality")
    assert target.env["POSTGRES_PASSWORD"] == "from-env"
    assert "from-env" not in target.display
    assert target.display == "postgresql://capa@db.example.com/quality"


def test_a_password_in_the_uri_wins_over_pgpassword(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGPASSWORD", "from-env")
    target = parse_target("postgresql://capa:in-uri@db.example.com/quality")
    assert target.env["POSTGRES_PASSWORD"] == "in-uri"


def test_no_password_anywhere_leaves_it_to_pgpass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)
    assert parse_target("postgresql://capa@/quality").env["POSTGRES_PASSWORD"] == ""
