"""The exceptions of the audit trail in a period (EU GMP Annex 11 §9; FDA data-integrity
guidance): what a reviewer must look at, read from the events alone, in log order.

An event belongs to the period when it was *recorded* in it (its UTC time, from the first to the
last day, both included): once a period is over, its listing never changes, so the SHA-256 of
the exceptions a review records (capa.domain.trail_review) proves what the reviewer was shown.
Only the kinds of event that can be exceptions are decoded; the review's own events are not
exceptions.

The categories, in the order they are listed:

- amendments (an NC's field corrected), reopenings and cancellations of NCs and CAs;
- due-date extensions of action items, and due dates accepted although already past (a plan or
  an extension made with a reason for a date before the day it was recorded);
- role and account changes: accounts added (with their roles), roles granted or revoked,
  accounts unlocked or deactivated;
- failed logins (every failed password check) and lockouts;
- late entries: an NC recorded more than LATE_ENTRY_DAYS days after it was detected, and an
  action item's completion recorded by someone on behalf of the one who did it;
- migrated records (brought from a legacy register), whose own late business dates are not
  listed again as late entries.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from capa.adapters.logreader import log_reader
from capa.audit.signatures import REF
from capa.domain.record import utc_iso
from capa.domain.user import USER_REF_PREFIX

__all__ = ["CATEGORIES", "LATE_ENTRY_DAYS", "TrailException", "exceptions_digest",
           "trail_exceptions"]

#: Category -> how a reviewer reads it, in the order of the listing.
CATEGORIES: dict[str, str] = {
    "amendments": "Amendments",
    "reopenings": "Reopenings",
    "cancellations": "Cancellations",
    "extensions": "Due-date extensions",
    "past_due_accepted": "Past due dates accepted",
    "role_changes": "Role and account changes",
    "failed_logins": "Failed logins",
    "lockouts": "Lockouts",
    "late_entries": "Late entries",
    "migrated": "Migrated records",
}
#: An NC recorded more than this many days after the day it was detected is a late entry.
LATE_ENTRY_DAYS = 7

_NC, _CA, _USER = ("capa.domain.nonconformity:Nonconformity.",
                   "capa.domain.corrective_action:CorrectiveAction.", "capa.domain.user:User.")
#: The topics that may be exceptions.
_TOPICS = (*(_NC + n for n in ("Raised", "Amended", "Reopened", "Cancelled", "Migrated")),
           *(_CA + n for n in ("Reopened", "Cancelled", "Migrated", "DueDateExtended",
                               "ActionItemPlanned", "ActionItemCompletedOnBehalf")),
           *(_USER + n for n in ("UserAdded", "RoleGranted", "RoleRevoked", "AccountUnlocked",
                                 "UserDeactivated", "LoginFailed", "AccountLocked")))
#: An event's stored time, read without decoding the whole event (most are outside the period).
_TIME = re.compile(rb'"timestamp":\{"_type_":"datetime_iso","_data_":"([^"]{10,40})"\}')


@dataclass(frozen=True)
class TrailException:
    """One event a reviewer must look at: where it is in the log, when, who, and what."""

    category: str
    position: int
    time: str
    record: str
    version: int
    event: str
    actor: str
    actor_name: str
    detail: str
    reason: str | None


def exceptions_digest(items: list[TrailException]) -> str:
    """The SHA-256 of the exceptions as listed: the canonical JSON (sorted keys, no spaces,
    UTF-8) of the list of their fields, in the order of the listing."""
    canonical = json.dumps([asdict(i) for i in items], sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def trail_exceptions(app: Any, start: dt.date, end: dt.date) -> list[TrailException]:
    """Every exception recorded from `start` to `end` (UTC days, both included), by category
    in the order of CATEGORIES, then by position in the log."""
    first = dt.datetime.combine(start, dt.time.min, tzinfo=dt.UTC)
    after = dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC) \
        if end < dt.date.max else dt.datetime.max.replace(tzinfo=dt.UTC)
    found: list[tuple[int, UUID, str, Any]] = []  # position, record, topic, event
    refs: dict[UUID, str] = {}
    with log_reader(app) as reader:
        marks = ", ".join("?" for _ in _TOPICS)
        rows = reader.stream(
            f"SELECT {reader.position}, originator_id, originator_version, topic, state "  # noqa: S608
            f"FROM {reader.events_table} WHERE topic IN ({marks}) ORDER BY {reader.position}",
            _TOPICS)
        for position, originator, version, topic, state in rows:
            data = bytes(state)
            stamp = _TIME.search(data)
            if stamp is not None and not _within(stamp[1], first, after):
                continue
            record_id = originator if isinstance(originator, UUID) else UUID(str(originator))
            event: Any = app.mapper.to_domain_event(StoredEvent(
                originator_id=record_id, originator_version=int(version), topic=str(topic),
                state=data))
            if not first <= event.timestamp < after:
                continue
            if int(version) == 1 and (named := REF.search(data)) is not None:
                refs[record_id] = named[1].decode("utf-8")
            found.append((int(position), record_id, str(topic), event))
    migrated = {record_id for _, record_id, topic, _ in found if topic.endswith(".Migrated")}
    items: list[TrailException] = []
    for position, record_id, topic, event in found:
        if record_id not in refs:
            refs[record_id] = _ref_of(app, record_id)
        ref = refs[record_id]
        for category, detail in _classify(topic, event, ref):
            if category == "late_entries" and record_id in migrated \
                    and topic.endswith(".Raised"):
                continue  # the migration says it once, with the legacy system it came from
            actor = str(event.actor)
            items.append(TrailException(
                category=category, position=position, time=utc_iso(event.timestamp),
                record=ref, version=int(event.originator_version),
                event=type(event).__name__, actor=actor,
                actor_name=app.full_name(actor) if actor else "",
                detail=detail, reason=_reason(event)))
    order = {name: n for n, name in enumerate(CATEGORIES)}
    return sorted(items, key=lambda i: (order[i.category], i.position))


def _within(stamp: bytes, first: dt.datetime, after: dt.datetime) -> bool:
    try:
        moment = dt.datetime.fromisoformat(stamp.decode("ascii"))
    except ValueError:
        return True  # decoded in full, and judged on the event's own time
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return first <= moment < after


def _ref_of(app: Any, record_id: UUID) -> str:
    stored = app.recorder.select_events(record_id, lte=1, limit=1)
    found = REF.search(bytes(stored[0].state)) if stored else None
    return found[1].decode("utf-8") if found is not None else record_id.hex


def _reason(event: Any) -> str | None:
    reason = getattr(event, "reason", None)
    return str(reason) if reason else None


def _quoted(value: Any) -> str:
    return "(empty)" if value is None else json.dumps(str(value), ensure_ascii=False)


def _classify(topic: str, event: Any, ref: str) -> Iterator[tuple[str, str]]:
    """The categories an event belongs to, each with what the reviewer is told of it."""
    name = topic.rpartition(".")[2]
    day = event.timestamp.astimezone(dt.UTC).date()
    user = ref[len(USER_REF_PREFIX):] if ref.startswith(USER_REF_PREFIX) else ref
    if name == "Amended":
        yield "amendments", f"{event.field}: {_quoted(event.old)} -> {_quoted(event.new)}"
    elif name == "Reopened":
        yield "reopenings", f"{ref} reopened"
    elif name == "Cancelled":
        yield "cancellations", f"{ref} cancelled"
    elif name == "DueDateExtended":
        yield "extensions", f"{event.number}: due {event.old_due} -> {event.new_due}"
        if event.new_due < day.isoformat():
            yield "past_due_accepted", (f"{event.number}: extended to {event.new_due}, already "
                                        f"past on {day}")
    elif name == "ActionItemPlanned":
        if getattr(event, "reason", None) and event.due < day.isoformat():
            yield "past_due_accepted", (f"{event.number}: planned with the due date "
                                        f"{event.due}, already past on {day}")
    elif name == "ActionItemCompletedOnBehalf":
        yield "late_entries", (f"{event.number}: completion by {event.done_by} recorded by "
                               f"{event.actor} on their behalf")
    elif name == "Raised":
        detected = dt.date.fromisoformat(str(event.detected_on)[:10])
        late = (day - detected).days
        if late > LATE_ENTRY_DAYS:
            yield "late_entries", f"detected on {detected}, recorded {late} days later"
    elif name == "Migrated":
        source = event.provenance
        yield "migrated", (f"migrated from {source.get('system')} ({source.get('file')}, row "
                           f"{source.get('row')}); legacy status {event.legacy_status}")
    elif name == "UserAdded":
        yield "role_changes", f"account {user} added with roles {', '.join(event.roles)}"
    elif name == "RoleGranted":
        yield "role_changes", f"role {event.role} granted to {user}"
    elif name == "RoleRevoked":
        yield "role_changes", f"role {event.role} revoked from {user}"
    elif name == "AccountUnlocked":
        yield "role_changes", f"account {user} unlocked"
    elif name == "UserDeactivated":
        yield "role_changes", f"account {user} deactivated"
    elif name == "LoginFailed":
        yield "failed_logins", f"failed password check for {user}"
    elif name == "AccountLocked":
        yield "lockouts", f"account {user} locked after {event.failed_attempts} failed attempts"
