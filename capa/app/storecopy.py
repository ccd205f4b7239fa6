"""Copying a store's events to another store (SQLite ↔ PostgreSQL), byte for byte, then checking.

Only the event log is copied, in global order, and the users' encrypted signing keys and the
password hashes its account events name with it: snapshot rows of earlier releases are caches
capa never reads, and read models and the audit ledger follow the log again on first use. The audit
trail's Merkle leaves are numbered by ordinal position, not by the back end's notification id,
so the copy hashes to the same tree as the original.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import StoredEvent

from capa.adapters.target import parse_target
from capa.app.core import Core
from capa.app.store import open_store, storage_failure
from capa.domain.errors import InvalidInput, NotPermitted

BATCH_SIZE = 500

#: (record id, version, topic, stored state bytes): what must be the same, event by event.
_Key = tuple[Any, int, str, bytes]


@dataclass(frozen=True)
class CopyReport:
    """What a copy did: events in the source, events written now, and that both logs match."""

    source: str
    target: str
    events: int
    copied: int
    verified: bool

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "target": self.target, "events": self.events,
                "copied": self.copied, "verified": self.verified}


def copy_store(source: Core, target: str, *, source_name: str = "",
               batch_size: int = BATCH_SIZE) -> CopyReport:
    """Copy every stored event of `source` into the store at `target`, then verify the copy.

    The target must be a new store (it is created), an empty one, or one that an interrupted
    copy of this same source left behind: then only the missing events are written. Anything
    else is refused, so a copy can never mix two histories. The acting user must be an
    administrator of the source.
    """
    me = source.user(source.actor())
    if "admin" not in me.roles or me.status != "active":
        raise NotPermitted(f"{me.user_id} may not copy the store (needs: admin)")
    if batch_size < 1:
        raise InvalidInput("the batch size must be 1 or more")
    try:
        destination = open_store(target, create=True)
    except InvalidInput as exc:
        if "already exists" not in str(exc):
            raise
        destination = open_store(target)
    shown = target_display(target)
    try:
        done = _common_prefix(source, destination, batch_size)
        copied = 0
        for batch in _batches(source, done, batch_size):
            destination.recorder.insert_events(
                [StoredEvent(originator_id=n.originator_id,
                             originator_version=n.originator_version,
                             topic=n.topic, state=n.state) for n in batch])
            copied += len(batch)
        # The hashes the account events name live outside the log: without them no one could
        # log in to the copy.
        for user_id, digest, password_hash in source.credentials.all_hashes():
            destination.credentials.put_hash(user_id, digest, password_hash)
        _copy_user_keys(source, destination)
        total = verify_copy(source, destination, batch_size)
    except Exception as exc:
        failure = storage_failure(exc)
        if failure is None:
            raise
        raise failure from None
    finally:
        destination.close()
    return CopyReport(source=source_name, target=shown, events=total, copied=copied,
                      verified=True)


def _copy_user_keys(source: Core, destination: Core) -> None:
    """The users' encrypted signing keys, which live beside the log: without them nobody could
    sign in the copy (SPEC §9.2)."""
    from capa.adapters.userkeys import user_keys_for

    keys = user_keys_for(destination.recorder)
    for key in user_keys_for(source.recorder).all():
        keys.put(key)


def verify_copy(source: Core, copy: Core,
                batch_size: int = BATCH_SIZE) -> int:
    """The number of events, once both logs hold the same events in the same order (record
    id, version, topic and stored bytes); InvalidInput naming the first difference otherwise."""
    count = 0
    for position, (mine, theirs) in enumerate(
        itertools.zip_longest(_keys(source, batch_size), _keys(copy, batch_size)), start=1
    ):
        if mine != theirs:
            raise InvalidInput(f"the copy differs from the source at event {position}: "
                               f"{_describe(mine)} in the source, {_describe(theirs)} in the "
                               "copy")
        count = position
    return count


def target_display(target: str) -> str:
    """The target as it may be printed: a URI's password masked."""

    try:
        return parse_target(target).display
    except ValueError:
        return target


def _common_prefix(source: Core, destination: Core,
                   batch_size: int) -> int:
    """How many events the destination already holds, all of them the source's first ones."""
    held = 0
    for mine, theirs in itertools.zip_longest(_keys(source, batch_size),
                                              _keys(destination, batch_size)):
        if theirs is None:
            break
        if mine != theirs:
            raise InvalidInput("the target store already holds other events: copy into a new "
                               "or empty store")
        held += 1
    return held


def _batches(app: Core, skip: int, batch_size: int) -> Iterator[list[Any]]:
    """The notifications of `app` in global order, in batches, after the first `skip`."""
    last = 0
    to_skip = skip
    while True:
        batch = list(app.recorder.select_notifications(start=last + 1, limit=batch_size))
        if not batch:
            return
        last = batch[-1].id
        if to_skip >= len(batch):
            to_skip -= len(batch)
            continue
        yield batch[to_skip:]
        to_skip = 0


def _keys(app: Core, batch_size: int) -> Iterator[_Key]:
    for batch in _batches(app, 0, batch_size):
        for n in batch:
            yield (n.originator_id, n.originator_version, n.topic, bytes(n.state))


def _describe(key: _Key | None) -> str:
    if key is None:
        return "nothing"
    record, version, topic, _ = key
    return f"{topic.rpartition(':')[2]} v{version} of {record}"
