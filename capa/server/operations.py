"""Which application operations the server offers, and how their arguments and results travel
as JSON (SPEC §11). Shared by the server (capa.server.api) and the command line's client
(capa.cli.remote), so both sides agree on every name and shape.

An operation is offered as `POST /v1/<service>/<method>`, its JSON body the method's arguments
by name. What cannot cross the wire as given is not offered: creating a store (`init`), and
operations whose arguments are paths or keys on the server's machine (the audit commands that
read the key and the checkpoint log, `store copy`, `import`). Evidence files travel as their
bytes (`{"name", "content_b64"}`), never as a path: a client never names a file of the server.
"""

from __future__ import annotations

import base64
import importlib
import inspect
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from capa.app.application import SERVICES
from capa.app.operations import operation_names

#: Service.method of operations that are not offered, and why (shown by the server's docs).
NOT_OFFERED: dict[str, str] = {
    "identity.initialise": "a server's store exists before the server starts (capa init)",
    "intake.import_ncs": "reads a file on the caller's machine",
    "queries.report": "the report's model; `queries.render_report` gives the document",
    "audit.checkpoint": "reads the store's key and checkpoint log on the server",
    "audit.consistency": "reads checkpoint files on the server",
    "audit.copy_store": "names another store on the server's machine",
    "audit.export": "writes a folder on the server's machine",
    "audit.prove": "reads the checkpoint log on the server",
    "audit.verify": "reads the store's key and checkpoint log on the server",
}

#: Arguments named for a secret they carry.
_SECRET_NAMES = frozenset({"password", "token", "secret"})

#: Arguments that carry files: sent as [{"name": ..., "content_b64": ...}].
FILE_ARGUMENTS = frozenset({"evidence"})

#: Arguments the server fills from its own environment, never from a request: the mail
#: server (and its password) reminders go through. A client naming them is refused (422), so no
#: caller can make the server connect somewhere else.
SERVER_ARGUMENTS: dict[str, str | None] = {"smtp_url": "CAPA_SMTP_URL",
                                           "sender": "CAPA_SMTP_FROM", "mailer": None}

#: How bytes in a result travel.
BYTES_KEY = "$bytes"


@dataclass(frozen=True)
class Offered:
    """One operation the server offers."""

    service: str
    method: str
    function: Callable[..., Any]
    names: tuple[str, ...]

    @property
    def path(self) -> str:
        return f"/v1/{self.service}/{self.method}"

    def parameters(self) -> list[inspect.Parameter]:
        """The arguments a request gives (those the server fills itself left out)."""
        return [p for p in inspect.signature(self.function).parameters.values()
                if p.name != "self" and p.name not in self.server_arguments()]

    def server_arguments(self) -> dict[str, str | None]:
        """The arguments of this operation the server fills: name -> environment variable."""
        names = inspect.signature(self.function).parameters
        return {k: v for k, v in SERVER_ARGUMENTS.items() if k in names}

    def secret_arguments(self) -> frozenset[str]:
        """The arguments that carry a secret (a password given as a value or a prompt, a
        token): never kept, nor hashed, by the server (SPEC §9.3)."""
        hints = self.hints()
        return frozenset(p.name for p in self.parameters()
                         if "Callable" in str(hints.get(p.name, ""))
                         or p.name in _SECRET_NAMES or p.name.endswith("_password"))

    def hints(self) -> dict[str, Any]:
        module = importlib.import_module(self.function.__module__)
        return typing.get_type_hints(self.function, vars(module))


def offered() -> Iterator[Offered]:
    """Every operation offered, service by service, in the order of their classes."""
    for service, (module, name) in SERVICES.items():
        cls = getattr(importlib.import_module(module), name)
        for method, function in inspect.getmembers(cls, inspect.isfunction):
            names = operation_names(function)
            if names is None or f"{service}.{method}" in NOT_OFFERED:
                continue
            yield Offered(service, method, function, names)


def encode(value: Any) -> Any:
    """A result as JSON-ready data: views and write results as the command line prints them
    with --json, bytes as {"$bytes": base64}, iterators and tuples as lists."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", by_alias=True)
    if hasattr(value, "as_dict"):
        return value.as_dict()
    if isinstance(value, bytes):
        return {BYTES_KEY: base64.b64encode(value).decode("ascii")}
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple) or inspect.isgenerator(value) or \
            isinstance(value, Iterator):
        return [encode(v) for v in value]
    return value


def decode(value: Any) -> Any:
    """The inverse of `encode` for bytes; everything else stays plain data."""
    if isinstance(value, dict):
        if set(value) == {BYTES_KEY}:
            return base64.b64decode(value[BYTES_KEY])
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value
