"""The signature checks of a store verification (in its one pass over the log) and of a bundle
(content hashes folded from the bundle's own events), SPEC §9.2."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    StoredEvent,
    UUIDAsHex,
)

from capa.audit.errors import TamperDetected
from capa.audit.signature_walk import SignatureFailure, SignatureWalk
from capa.audit.signatures import ACCOUNT_NAMES, REF, SIGNED_TOPICS, STORE_INITIALISED, USER_TOPIC

__all__ = ["StoreSignatures", "fold_deferred"]

#: The events the store's walk reads: signed ones, the store's first, and account changes.
_WATCHED = frozenset({STORE_INITIALISED, *SIGNED_TOPICS,
                      *(USER_TOPIC + name for name in ACCOUNT_NAMES)})
#: What a chunk's joined topics contain when it holds a watched event.
_NEEDLES = (USER_TOPIC, "StoreInitialised", "Nonconformity.Closed",
            "CorrectiveAction.PlanApproved", "CorrectiveAction.Effectiveness",
            "CorrectiveAction.Closed", "AuditTrailReviews.ReviewSigned")


class StoreSignatures:
    """The signature check of `capa audit verify`, fed the chunks of its one pass over the log
    (capa.audit.verification), content hashes included. The first failure is kept and raised by
    `result`, after the ledger's own checks, which name a changed event more precisely."""

    def __init__(self, app: Any) -> None:
        self.walk = SignatureWalk(content_of=lambda record_hex, v: _folded_digest(app, record_hex,
                                                                                  v),
                                  ref_of=lambda record_hex: _first_ref(app, record_hex))
        self.failure: SignatureFailure | None = None

    def observe(self, chunk: Sequence[tuple[int, str, int, str, bytes]], base: int) -> None:
        """Events base+1, base+2, … of the log. Only first versions, account and store events
        and events that hold a signature are looked at: this runs once per event of the log
        (SPEC §7 P3)."""
        if self.failure is not None:
            return
        # A few searches of the chunk's joined topics are much cheaper than a test per event,
        # and account and signed events are rare: only a chunk that holds one is looked at event
        # by event. Record names are read when a signature needs one (`ref_of`).
        topics = "\n".join([e[3] for e in chunk])
        if not any(needle in topics for needle in _NEEDLES):
            return
        picked = [i for i, e in enumerate(chunk) if e[3] in _WATCHED]
        feed = self.walk.feed
        try:
            for i in picked:
                event = chunk[i]
                feed(base + i + 1, event[1], event[2], event[3], event[4])
        except SignatureFailure as failure:
            self.failure = failure

    def result(self) -> dict[str, Any]:
        """The summary, or TamperDetected (exit 6) naming the first bad event."""
        failure = self.failure
        if failure is not None:
            raise TamperDetected(str(failure), position=failure.position,
                                 record=failure.record, version=failure.version)
        return self.walk.summary()


def _first_ref(app: Any, record_hex: str) -> str | None:
    """The ref of a record as its stored first event gives it."""
    stored = app.recorder.select_events(UUID(hex=record_hex), lte=1, limit=1)
    found = REF.search(bytes(stored[0].state)) if stored else None
    return found[1].decode("utf-8") if found is not None else None


def _folded_digest(app: Any, record_hex: str, version: int) -> str | None:
    """The content SHA-256 of a record folded from its stored events (never a snapshot, which
    the ledger does not cover) up to a version."""
    aggregate: Any = None
    try:
        for item in app.recorder.select_events(UUID(hex=record_hex), lte=version):
            aggregate = app.mapper.to_domain_event(item).mutate(aggregate)
        if aggregate is None or aggregate.version != version:
            return None
        return str(aggregate.content_digest())
    except Exception:  # noqa: BLE001 - a record that no longer folds binds no content
        return "a record that cannot be folded"



# -- bundles ---------------------------------------------------------------------------------


def fold_deferred(walk: SignatureWalk,
                  events: Iterable[tuple[str, int, str, bytes]]) -> None:
    """Check the content hashes a bundle walk left (``walk.deferred``) by folding the signed
    records from the bundle's own events (record hex id, version, topic, stored bytes), with
    capa's record classes; raise SignatureFailure at the first that differs."""
    wanted: dict[str, list[tuple[Callable[[str], SignatureFailure], int, dict[str, Any]]]] = {}
    for fail, record_hex, version, sig in walk.deferred:
        wanted.setdefault(record_hex, []).append((fail, version, sig))
    if not wanted:
        return
    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    mapper: Mapper[UUID] = Mapper(transcoder=transcoder)
    folded: dict[str, Any] = {}
    digests: dict[tuple[str, int], str] = {}
    needed = {(h, v) for h, items in wanted.items() for _, v, _ in items}
    for record_hex, version, topic, state in events:
        if record_hex not in wanted:
            continue
        try:
            event: Any = mapper.to_domain_event(StoredEvent(
                originator_id=UUID(hex=record_hex), originator_version=version, topic=topic,
                state=state))
            folded[record_hex] = event.mutate(folded.get(record_hex))
            if (record_hex, version) in needed:
                digests[(record_hex, version)] = str(folded[record_hex].content_digest())
        except Exception:  # noqa: BLE001 - a record that no longer folds binds no content
            digests.setdefault((record_hex, version), "a record that cannot be folded")
    for record_hex, items in wanted.items():
        for fail, version, sig in items:
            walk.check_content(fail, digests.get((record_hex, version), "no such version"), sig)
