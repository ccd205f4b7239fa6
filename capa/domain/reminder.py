"""Reminders sent about corrective actions (SPEC §12): one record per message that went out.

A reminder's reference is made of what makes it one message: its kind, the record and action
item it is about, the occasion (the due date it counts from, or the implementation it waits to
see verified) and the person it went to. The same reminder therefore always has the same
aggregate id, so `capa notify` sends it once: a second run finds it recorded, and two runs
that race collide in the event store instead of both recording it. A due-date extension gives
an item a new occasion, and so re-arms its reminders.
"""

from __future__ import annotations

from enum import StrEnum

from eventsourcing.domain import event

from capa.domain.record import Record

__all__ = ["REMINDER_REF_PREFIX", "Reminder", "ReminderKind", "reminder_ref"]

REMINDER_REF_PREFIX = "REMINDER-"


class ReminderKind(StrEnum):
    DUE_SOON = "due-soon"
    OVERDUE = "overdue"
    AWAITING_VERIFICATION = "awaiting-verification"
    ESCALATION = "escalation"


def reminder_ref(kind: str, record: str, action: str | None, occasion: str,
                 recipient: str) -> str:
    """The reference of one reminder: the same message always gives the same one."""
    return REMINDER_REF_PREFIX + "/".join((kind, record, action or "-", occasion, recipient))


class Reminder(Record):
    """A reminder message that was handed to the mail server: what, to whom (user and address),
    about which record and action item, for which occasion and threshold; when and by whom it
    was sent are the event's own time and actor (R8)."""

    @classmethod
    def sent(cls, *, kind: str, record: str, action: str | None, occasion: str,
             recipient: str, address: str, threshold: str, subject: str,
             as_of: str) -> Reminder:
        chosen = ReminderKind(kind).value
        return cls(ref=reminder_ref(chosen, record, action, occasion, recipient), kind=chosen,
                   record=record, action=action, occasion=occasion, recipient=recipient,
                   address=address, threshold=threshold, subject=subject, as_of=as_of)

    @event("ReminderSent")
    def __init__(self, ref: str, kind: str, record: str, action: str | None, occasion: str,
                 recipient: str, address: str, threshold: str, subject: str,
                 as_of: str) -> None:
        self.ref = ref
        self.kind = kind
        self.record = record
        self.action = action
        # The due date the reminder counts from, or the implementation awaiting verification.
        self.occasion = occasion
        self.recipient = recipient
        self.address = address
        # In words, e.g. "due within 7 days", "overdue 14 days or more".
        self.threshold = threshold
        self.subject = subject
        # The day the thresholds were judged on.
        self.as_of = as_of
        self.status = "sent"
