"""The capa application: the core (capa.app.core) and one service per feature, each loaded on
first use, so that a command loads only the services it runs (start-up time, SPEC §7 P1).

    app = open_store("capa.db")
    with app.acting_as("jchen", password):
        app.nonconformities.raise_nc(title=..., description=..., source=..., severity=...)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from capa.app.core import Core

if TYPE_CHECKING:
    from capa.app.audit import Audit
    from capa.app.corrective_actions import CorrectiveActions
    from capa.app.evidence import Evidence
    from capa.app.identity import Identity
    from capa.app.intake import Intake
    from capa.app.nonconformities import Nonconformities
    from capa.app.notifications import Notifications
    from capa.app.queries import Queries
    from capa.app.records import Records
    from capa.app.reviews import Reviews
    from capa.app.service_accounts import ServiceAccounts
    from capa.app.webhooks import Webhooks

S = TypeVar("S")

#: Attribute -> (module, class) of every service of the application.
SERVICES: dict[str, tuple[str, str]] = {
    "identity": ("capa.app.identity", "Identity"),
    "nonconformities": ("capa.app.nonconformities", "Nonconformities"),
    "corrective_actions": ("capa.app.corrective_actions", "CorrectiveActions"),
    "records": ("capa.app.records", "Records"),
    "evidence": ("capa.app.evidence", "Evidence"),
    "intake": ("capa.app.intake", "Intake"),
    "queries": ("capa.app.queries", "Queries"),
    "audit": ("capa.app.audit", "Audit"),
    "reviews": ("capa.app.reviews", "Reviews"),
    "notifications": ("capa.app.notifications", "Notifications"),
    "webhooks": ("capa.app.webhooks", "Webhooks"),
    "service_accounts": ("capa.app.service_accounts", "ServiceAccounts"),
}


class _Service(Generic[S]):
    """A service of the application, its module imported on first use. Services hold no state
    of their own (the core does), so each access makes one: an application keeping its
    services would form a reference cycle with them, and a store closed by reference
    counting as soon as the application goes would then wait for the cyclic collector."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, app: None, owner: type) -> _Service[S]: ...

    @overload
    def __get__(self, app: Core, owner: type) -> S: ...

    def __get__(self, app: Core | None, owner: type) -> Any:
        if app is None:
            return self
        module, name = SERVICES[self.name]
        return getattr(importlib.import_module(module), name)(app)


class CapaApplication(Core):
    """The core with its services; operations are called on the services, e.g.
    `app.nonconformities.raise_nc(...)`, and each checks the acting user first."""

    # eventsourcing names every subclass after itself unless it says otherwise, and the name
    # picks the store's PostgreSQL tables and settings: the store's name, as the core's.
    name = Core.name

    identity: _Service[Identity] = _Service()
    nonconformities: _Service[Nonconformities] = _Service()
    corrective_actions: _Service[CorrectiveActions] = _Service()
    records: _Service[Records] = _Service()
    evidence: _Service[Evidence] = _Service()
    intake: _Service[Intake] = _Service()
    queries: _Service[Queries] = _Service()
    audit: _Service[Audit] = _Service()
    reviews: _Service[Reviews] = _Service()
    notifications: _Service[Notifications] = _Service()
    webhooks: _Service[Webhooks] = _Service()
    service_accounts: _Service[ServiceAccounts] = _Service()
