"""Outgoing webhooks (SPEC §11): subscriptions of other systems to record events, and the
record of every delivery made to them.

A `Webhook` is a subscription: the address to POST to and the record event types it wants
(`nc.raised`, `ca.closed`, `nc.*`, `*`), added and removed by an administrator. Its signing
secret is never part of it: the server derives it from a key kept outside the store.

A `WebhookDelivery` is one record event sent to one webhook. Its reference is made of the two
(the webhook and the event's position in the log), so the same event is delivered to the same
webhook as one delivery: two dispatchers that race collide in the event store before either
sends it. Every attempt's outcome is an event of the delivery: a failed attempt (HTTP status or
error, when the next one is due) or the attempt that delivered it.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit
from uuid import NAMESPACE_URL, uuid5

from eventsourcing.domain import Aggregate, event

from capa.domain.corrective_action import CorrectiveAction
from capa.domain.errors import InvalidInput, RuleViolation
from capa.domain.nonconformity import Nonconformity
from capa.domain.record import Record

__all__ = ["DELIVERY_REF_PREFIX", "EVENT_TYPES", "WEBHOOK_REF_PREFIX", "Webhook",
           "WebhookDelivery", "delivery_ref", "event_type_of", "valid_events", "valid_url"]

WEBHOOK_REF_PREFIX = "WEBHOOK-"
DELIVERY_REF_PREFIX = "DELIVERY-"
MAX_URL = 2000
_KINDS = {"nc": Nonconformity, "ca": CorrectiveAction}
_WORD = re.compile(r"(?<!^)(?=[A-Z])")
_UNSAFE = re.compile(r"[\x00-\x20\x7f-\x9f]")


def _snake(name: str) -> str:
    return _WORD.sub("_", name).lower()


def _event_types() -> dict[str, str]:
    """Event type (`nc.raised`) -> the topic of the record event class it names."""
    found: dict[str, str] = {}
    for prefix, kind in _KINDS.items():
        for name, value in sorted(vars(kind).items()):
            if isinstance(value, type) and issubclass(value, Aggregate.Event) \
                    and name not in ("Event", "Created"):
                found[f"{prefix}.{_snake(name)}"] = f"{value.__module__}:{value.__qualname__}"
    return found


#: Every record event a webhook may subscribe to, by its type: topic of its event class.
EVENT_TYPES: dict[str, str] = _event_types()
_TYPE_OF_TOPIC = {topic: name for name, topic in EVENT_TYPES.items()}


def event_type_of(topic: str) -> str | None:
    """The webhook event type of a stored event's topic; None for an event that is not one of
    an NC or a CA (accounts, reminders, deliveries are never sent)."""
    return _TYPE_OF_TOPIC.get(topic)


def valid_url(url: str) -> str:
    """An http(s) address with a host, no credentials (they would be kept in the log) and no
    spaces or control characters."""
    text = (url or "").strip()
    if not text or len(text) > MAX_URL or _UNSAFE.search(text):
        raise InvalidInput(f"the webhook URL must be an http:// or https:// address of at most "
                           f"{MAX_URL} characters, without spaces")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise InvalidInput(f"the webhook URL {text!r} is not a valid address") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"the webhook URL must be http:// or https:// with a host (got "
                           f"{text!r})")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput("the webhook URL may not hold a user name or password: they would "
                           "be kept in the audit trail; receivers check the signature instead")
    if parts.fragment:
        raise InvalidInput("the webhook URL may not have a #fragment")
    del port
    return text


def valid_events(events: list[str] | tuple[str, ...]) -> list[str]:
    """The event types subscribed to, each known (or `nc.*`, `ca.*`, `*`), in a stable order."""
    chosen: list[str] = []
    for given in events:
        name = given.strip().lower()
        if name not in EVENT_TYPES and name not in ("*", "nc.*", "ca.*"):
            raise InvalidInput(f"unknown event type {given!r}: give nc.* or ca.* types such as "
                               "nc.raised, nc.closed, ca.opened, ca.closed, or nc.*, ca.*, *")
        if name not in chosen:
            chosen.append(name)
    if not chosen:
        raise InvalidInput("a webhook needs at least one event type (e.g. nc.raised)")
    return chosen


def delivery_ref(webhook: str, position: int) -> str:
    """The reference of the delivery of the event at `position` to `webhook`."""
    return f"{DELIVERY_REF_PREFIX}{webhook}/{position}"


class Webhook(Record):
    """A subscription of another system to record events; when and by whom it was added or
    removed are its events' own time and actor (R8)."""

    @classmethod
    def add(cls, *, ref: str, url: str, events: list[str], starts_after: int,
            reason: str | None, added_by: str) -> Webhook:
        return cls(ref=ref, url=valid_url(url), events=valid_events(events),
                   starts_after=starts_after, reason=(reason or "").strip() or None,
                   added_by=added_by)

    @event("WebhookAdded")
    def __init__(self, ref: str, url: str, events: list[str], starts_after: int,
                 reason: str | None, added_by: str) -> None:
        self.ref = ref
        self.url = url
        self.events = list(events)
        # The log position when it was added: only later events are sent to it.
        self.starts_after = starts_after
        self.reason = reason
        self.status = "active"
        self.added_by = added_by

    def remove(self, reason: str) -> None:
        if self.status != "active":
            raise RuleViolation("R7", f"{self.ref} is already removed")
        self._removed(reason=reason)

    @event("WebhookRemoved")
    def _removed(self, reason: str) -> None:
        self.status = "removed"
        self.removed_reason = reason

    def wants(self, event_type: str) -> bool:
        kind = event_type.split(".", 1)[0]
        return any(e in ("*", f"{kind}.*", event_type) for e in self.events)


class WebhookDelivery(Record):
    """One record event sent to one webhook, with the outcome of every attempt."""

    @classmethod
    def schedule(cls, *, webhook: str, position: int, event_type: str, record: str,
                 record_version: int) -> WebhookDelivery:
        ref = delivery_ref(webhook, position)
        return cls(ref=ref, delivery_id=str(uuid5(NAMESPACE_URL, f"urn:capa:{ref}")),
                   webhook=webhook, position=position, event_type=event_type, record=record,
                   record_version=record_version)

    @event("DeliveryScheduled")
    def __init__(self, ref: str, delivery_id: str, webhook: str, position: int,
                 event_type: str, record: str, record_version: int) -> None:
        self.ref = ref
        # The receiver's key for recognising a delivery it has had before (at least once).
        self.delivery_id = delivery_id
        self.webhook = webhook
        self.position = position
        self.event_type = event_type
        self.record = record
        self.record_version = record_version
        self.status = "pending"
        self.attempts = 0
        self.last_status: int | None = None
        self.last_error: str | None = None
        self.next_attempt_at: str | None = None
        self.delivered_at: str | None = None

    @event("DeliveryAttemptFailed")
    def attempt_failed(self, http_status: int | None, error: str,
                       next_attempt_at: str | None) -> None:
        if self.status == "delivered":
            raise RuleViolation("R7", f"{self.ref} is already delivered")
        self.attempts += 1
        self.status = "failed"
        self.last_status = http_status
        self.last_error = error
        # None once the attempts are used up: `capa webhook deliver --retry-failed` tries again.
        self.next_attempt_at = next_attempt_at

    @event("Delivered")
    def delivered(self, http_status: int) -> None:
        if self.status == "delivered":
            raise RuleViolation("R7", f"{self.ref} is already delivered")
        self.attempts += 1
        self.status = "delivered"
        self.last_status = http_status
        self.last_error = None
        self.next_attempt_at = None
        self.delivered_at = self.event_time
