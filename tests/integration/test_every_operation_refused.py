"""Every operation of every service checks the acting user first (SPEC §2, §9.6).

Each public method of each service is an operation (capa.app.operations); called by a user
whose roles the permission table does not admit for it, by an account without a role, or with
no acting user at all, it is refused (NotPermitted, exit 4 on the command line) before anything
is stored. A new public method without `@operation` fails the first test.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from capa.app.application import SERVICES, CapaApplication
from capa.app.operations import OPERATIONS, operation_names
from capa.app.permissions import OPEN_OPERATIONS, PERMISSIONS, allowed_roles
from capa.app.store import open_memory_store
from capa.domain.errors import NotPermitted
from capa.domain.user import Role

PASSWORD = "every-operation-password-1"
ROLES = [role.value for role in Role]
#: The operations that run without an acting user, each declared open in the table.
OPEN = {"Identity.authenticate", "Identity.login", "Identity.resume_session", "Identity.logout",
        "Identity.initialise", "ServiceAccounts.resume_token"}


def _service_classes() -> dict[str, type]:
    return {attribute: getattr(importlib.import_module(module), name)
            for attribute, (module, name) in SERVICES.items()}


def _public_methods() -> Iterator[tuple[str, str, Callable[..., Any]]]:
    for attribute, cls in _service_classes().items():
        for name, member in inspect.getmembers(cls, inspect.isfunction):
            if not name.startswith("_"):
                yield attribute, f"{cls.__qualname__}.{name}", member


def test_every_public_service_method_is_a_registered_operation() -> None:
    methods = list(_public_methods())
    assert methods
    missing = [key for _, key, method in methods if operation_names(method) is None]
    assert missing == [], f"public service methods without @operation: {missing}"
    assert {key for _, key, _ in methods} <= set(OPERATIONS)


def test_every_operation_names_entries_of_the_permission_table() -> None:
    for key, names in OPERATIONS.items():
        for name in names:
            assert name in PERMISSIONS or name in OPEN_OPERATIONS, (key, name)


def test_the_open_operations_are_exactly_those_declared_open() -> None:
    declared = {key for key, names in OPERATIONS.items()
                if any(name in OPEN_OPERATIONS for name in names)}
    assert declared == OPEN
    for name, why in OPEN_OPERATIONS.items():
        assert why.strip(), f"{name} is open without a reason"


@pytest.fixture(scope="module")
def app() -> Iterator[CapaApplication]:
    """An in-memory store with one account per role and one that holds none."""
    created = open_memory_store()
    created.identity.initialise("Refusal Medical", admin="admin1", full_name="Ada Admin",
                                password=PASSWORD)
    with created.acting_as("admin1", PASSWORD):
        for role in ROLES[1:]:
            created.identity.add_user(f"{role}1", full_name=f"{role.title()} One",
                                      roles=[role], password=PASSWORD)
        created.identity.add_user("norole1", full_name="Norole One", roles=["reporter"],
                                  password=PASSWORD)
        created.identity.revoke_role("norole1", "reporter")
    yield created
    created.close()


def _placeholder_call(service: Any, method: Callable[..., Any]) -> Callable[[], Any]:
    """A call of the operation with placeholder arguments: it must be refused before any
    of them is looked at."""
    parameters = list(inspect.signature(method).parameters.values())[1:]
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for parameter in parameters:
        if parameter.default is not inspect.Parameter.empty:
            continue
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY:
            kwargs[parameter.name] = "x"
        elif parameter.kind in (inspect.Parameter.POSITIONAL_ONLY,
                                inspect.Parameter.POSITIONAL_OR_KEYWORD):
            args.append("x")
    bound = getattr(service, method.__name__)
    return lambda: bound(*args, **kwargs)


def _refusing_accounts(names: tuple[str, ...]) -> list[str | None]:
    """No acting user, the account without a role, and every role some entry does not admit."""
    admitted = set.intersection(*(set(allowed_roles(name)) for name in names))
    return [None, "norole1", *(f"{role}1" for role in ROLES if role not in admitted)]


CASES = [(attribute, key) for attribute, key, _ in _public_methods() if key not in OPEN]


@pytest.mark.parametrize(("attribute", "key"), CASES)
def test_every_operation_is_refused_without_the_role(app: CapaApplication, attribute: str,
                                                     key: str) -> None:
    method = next(m for a, k, m in _public_methods() if k == key)
    names = OPERATIONS[key]
    call = _placeholder_call(getattr(app, attribute), method)
    before = app.recorder.max_notification_id()
    for user in _refusing_accounts(names):
        if user is None:
            with pytest.raises(NotPermitted):
                call()
        else:
            with app.acting_as(user, PASSWORD), pytest.raises(NotPermitted):
                call()
    assert app.recorder.max_notification_id() == before, f"refused {key} stored an event"


def test_an_operation_the_table_no_longer_names_is_refused_for_everyone(
    app: CapaApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    from capa.app import permissions

    table = {k: v for k, v in permissions.PERMISSIONS.items() if k != "nc list"}
    monkeypatch.setattr(permissions, "PERMISSIONS", table)
    for user in ("admin1", "quality1", "auditor1"):
        with app.acting_as(user, PASSWORD), pytest.raises(NotPermitted, match="permission table"):
            app.queries.list_records("nc")


def test_the_application_keeps_the_store_name_its_tables_are_named_after() -> None:
    """eventsourcing names a subclass after itself unless told: the composed application must
    keep the name PostgreSQL stores' tables and settings carry."""
    from capa.adapters.eventlog import STORE_NAME
    from capa.app.core import Core

    assert CapaApplication.name == Core.name == STORE_NAME == "capa"
