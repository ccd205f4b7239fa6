"""Store targets (`--db`, CAPA_DB): a SQLite path or a libpq URI, as eventsourcing settings."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import quote, unquote

__all__ = ["StoreTarget", "parse_target"]

# Seconds a writer waits for another writer's lock before it gives up; the same on both back ends
# so that a command behaves alike whichever store it runs on.
LOCK_TIMEOUT_SECONDS = 30

# eventsourcing uses this as the wait for a pooled connection, so it bounds how long a command
# hangs on a server that does not answer.
CONNECT_TIMEOUT_SECONDS = 10

# One command is one short-lived process with one thread: keep one connection, allow a couple more
# if a read overlaps a write, and never hold the server's connection slots for long.
POOL_SIZE = 1
POOL_MAX_OVERFLOW = 2

DEFAULT_PORT = 5432

_SCHEMES = ("postgresql", "postgres")
_URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_MASK = "***"
# libpq options that eventsourcing can pass on. Others (sslmode, application_name, ...) cannot
# reach libpq through eventsourcing's settings, so they are refused rather than silently dropped;
# libpq still reads them from PG* environment variables.
_QUERY_KEYS = ("host", "port", "dbname", "user", "password", "connect_timeout")


@dataclass(frozen=True)
class StoreTarget:
    """Where a store lives, how to show it, and the eventsourcing environment that opens it."""

    kind: Literal["sqlite", "postgres"]
    display: str
    # Left out of repr and hash: it holds the password, and a dict cannot be hashed.
    env: dict[str, str] = field(repr=False, hash=False)


def parse_target(target: str) -> StoreTarget:
    """Parse a store target, e.g. `capa.db` or `postgresql://capa:secret@db.example:5432/capa`.

    Raises ValueError with a one-line message (which never shows the password) when the target
    is not a usable SQLite path or libpq URI.
    """
    if not target.strip():
        raise ValueError(
            "the store target is empty: give a SQLite file path or a postgresql:// URI"
        )
    if "\x00" in target:
        raise ValueError("the store target contains a NUL character")
    scheme, separator, _ = target.partition(":")
    if separator and scheme.lower() in _SCHEMES:
        return _postgres_target(target)
    if "://" in target and _URI_SCHEME.fullmatch(scheme):
        raise ValueError(
            f"unsupported store scheme {scheme!r}: give a SQLite file path or a postgresql:// URI"
        )
    return _sqlite_target(target)


def _sqlite_target(path: str) -> StoreTarget:
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": path,
        "SQLITE_LOCK_TIMEOUT": str(LOCK_TIMEOUT_SECONDS),
    }
    return StoreTarget(kind="sqlite", display=path, env=env)


def _postgres_target(uri: str) -> StoreTarget:
    scheme, separator, rest = uri.partition("://")
    if not separator:
        raise ValueError(f"malformed store URI: expected {scheme.lower()}://[user[:password]@]"
                         "host[:port]/dbname")
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, _, hostport = netloc.rpartition("@")
    user, has_password, password = userinfo.partition(":")
    host, port = _split_hostport(hostport)
    params = {
        "user": unquote(user),
        "password": unquote(password) if has_password else "",
        "host": unquote(host),
        "port": port,
        "dbname": unquote(path),
        "connect_timeout": str(CONNECT_TIMEOUT_SECONDS),
    }
    params.update(_query_params(query))
    in_uri = bool(params["password"])
    if not in_uri:
        # eventsourcing hands libpq the password it is given, even an empty one, and libpq then
        # never reads PGPASSWORD: so capa reads it here. ~/.pgpass is still read by libpq.
        params["password"] = os.environ.get("PGPASSWORD", "")

    if not params["dbname"]:
        raise ValueError("the store URI names no database: add /DBNAME after the host")
    port = params["port"] or str(DEFAULT_PORT)
    if not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        raise ValueError("invalid port in the store URI: expected a number from 1 to 65535")
    if not (params["connect_timeout"].isascii() and params["connect_timeout"].isdigit()):
        raise ValueError("invalid connect_timeout in the store URI: expected whole seconds")

    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": params["dbname"],
        # A host starting with "/" is the directory of a Unix socket; libpq (and so eventsourcing)
        # takes it as the host as it is. Empty means libpq's default socket directory.
        "POSTGRES_HOST": params["host"],
        "POSTGRES_PORT": port,
        # Empty user or password: libpq falls back to the OS user and ~/.pgpass.
        "POSTGRES_USER": params["user"],
        "POSTGRES_PASSWORD": params["password"],
        "POSTGRES_CONNECT_TIMEOUT": params["connect_timeout"],
        "POSTGRES_LOCK_TIMEOUT": str(LOCK_TIMEOUT_SECONDS),
        "POSTGRES_POOL_SIZE": str(POOL_SIZE),
        "POSTGRES_MAX_OVERFLOW": str(POOL_MAX_OVERFLOW),
    }
    display = _display(
        user=params["user"],
        masked=in_uri,
        host=params["host"],
        port=params["port"],
        dbname=params["dbname"],
    )
    return StoreTarget(kind="postgres", display=display, env=env)


def _split_hostport(hostport: str) -> tuple[str, str]:
    if hostport.startswith("["):
        address, bracket, after = hostport[1:].partition("]")
        if not bracket:
            raise ValueError("malformed store URI: '[' without ']' around an IPv6 address")
        if after and not after.startswith(":"):
            raise ValueError("malformed store URI: unexpected text after ']'")
        return address, after[1:]
    if "," in hostport:
        raise ValueError("the store URI names several hosts: give exactly one")
    host, _, port = hostport.partition(":")
    return host, port


def _query_params(query: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in query.split("&") if query else ():
        key, equals, value = item.partition("=")
        key = unquote(key)
        if not equals:
            raise ValueError(f"malformed store URI: parameter {key!r} has no '=value'")
        if key not in _QUERY_KEYS:
            raise ValueError(
                f"unsupported parameter {key!r} in the store URI: only "
                f"{', '.join(_QUERY_KEYS)} are understood; set other libpq options "
                "as PG* environment variables"
            )
        params[key] = unquote(value)
    return params


def _display(*, user: str, masked: bool, host: str, port: str, dbname: str) -> str:
    userinfo = quote(user, safe="") + (":" + _MASK if masked else "")
    netloc = userinfo + "@" if userinfo else ""
    query = []
    if host.startswith("/"):
        query.append("host=" + quote(host, safe="/"))
        if port:
            query.append("port=" + port)
    else:
        netloc += f"[{host}]" if ":" in host else quote(host, safe=".-_~")
        if port:
            netloc += ":" + port
    text = f"postgresql://{netloc}/{quote(dbname, safe='')}"
    return text + "?" + "&".join(query) if query else text
