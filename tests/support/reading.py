"""Looking at a store as one of its users. Every operation of the application, reads included,
checks the acting user first (capa.app.operations), so a test that only looks at what a store
holds does so as an account that may read it: its first active account that holds a role
(every role may read)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from eventsourcing.utils import get_topic

from capa.app.core import Core
from capa.domain.record import actor_id
from capa.domain.user import User, UserStatus


def reader_of(app: Core) -> str:
    """The first active account of the store that holds a role."""
    for item in app.recorder.select_notifications(start=None, limit=1_000_000,
                                                  topics=[get_topic(User.UserAdded)]):
        added: Any = app.mapper.to_domain_event(item)
        account = app.find_user(str(added.user_id))
        if account is not None and account.status == UserStatus.ACTIVE and account.roles:
            return account.user_id
    raise AssertionError("the store has no active account that holds a role")


@contextmanager
def reading(app: Core) -> Iterator[None]:
    """Act as a reader of the store, unless someone already acts (then as them)."""
    if actor_id.get():
        yield
        return
    with app.acting_as(reader_of(app)):
        yield
