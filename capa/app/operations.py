"""Every public operation of the application's services, and the check each makes first.

`@operation("nc raise")` on a service method registers it in OPERATIONS and makes every call
check the acting user against the permission table (capa.app.permissions) through the core,
before the method runs, reads included. A method that names several entries (a `show` of an NC
or a CA) runs only for a user every one of them admits. There is no way round the check: an
operation the table declares open is open because the table says so.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

#: "Service.method" -> the permission table entries the operation is checked against.
OPERATIONS: dict[str, tuple[str, ...]] = {}


class _Authorising(Protocol):
    def authorise(self, operation: str) -> str: ...


class _Service(Protocol):
    core: _Authorising


def operation(*names: str) -> Callable[[F], F]:
    """Register a service method as an operation checked against the table entries `names`."""
    if not names:
        raise ValueError("an operation names at least one entry of the permission table")

    def register(method: F) -> F:
        @functools.wraps(method)
        def checked(service: _Service, /, *args: Any, **kwargs: Any) -> Any:
            for name in names:
                service.core.authorise(name)
            return method(service, *args, **kwargs)

        checked.__dict__["operation"] = names
        OPERATIONS[method.__qualname__] = names
        return checked  # type: ignore[return-value]

    return register


def operation_names(method: Any) -> tuple[str, ...] | None:
    """The table entries a service method is checked against; None for a method that is not
    an operation."""
    names = getattr(method, "operation", None)
    return names if isinstance(names, tuple) else None
