"""Outgoing webhooks (SPEC §11): subscriptions of other systems to record events, and their
delivery, signed, retried with back-off and recorded.

`deliver` is one pass of the dispatcher (`capa webhook deliver`, or `capa serve
--webhooks-every`): it follows the event log in order from where each webhook's deliveries
stopped, and POSTs every NC or CA event a webhook subscribes to, signed with the webhook's
secret (capa.adapters.webhooks). A delivery is recorded before it is sent and every attempt's
outcome after, so a restarted server resumes where it stopped: at least once, never lost. A
failed delivery is tried again after a back-off that doubles with each attempt, up to a bound;
while one waits, later events for the same webhook wait behind it, so a receiver that was
down gets them in order once it is up.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic

import capa
from capa.adapters.webhooks import post, signature, webhook_key, webhook_key_path, webhook_secret
from capa.app.core import Core
from capa.app.operations import operation
from capa.domain.errors import Conflict, InvalidInput, NotFound
from capa.domain.record import Record, require_reason, utc_iso
from capa.domain.webhook import (
    EVENT_TYPES,
    WEBHOOK_REF_PREFIX,
    Webhook,
    WebhookDelivery,
    event_type_of,
    valid_events,
    valid_url,
)

_WEBHOOK_TOPICS = [f"{get_topic(Webhook)}.{name}" for name in ("WebhookAdded",
                                                                   "WebhookRemoved")]
_DELIVERY_TOPICS = [f"{get_topic(WebhookDelivery)}.{name}" for name in (
    "DeliveryScheduled", "DeliveryAttemptFailed", "Delivered")]
_RECORD_TOPICS = sorted(EVENT_TYPES.values())
_BATCH = 1000
#: What a payload's summary says of each kind of record: its state after the event.
_SUMMARY = {"nonconformity": ("title", "status", "severity", "source", "product", "lot",
                              "external_ref", "detected_on"),
            "corrective-action": ("title", "status", "owner", "iteration")}


@dataclass(frozen=True)
class DeliverySettings:
    """How hard a delivery is tried: attempts in all, the first back-off (doubling after each
    failed attempt, up to `max_backoff`) and each request's timeout, all in seconds."""

    attempts: int = 8
    backoff: float = 30.0
    max_backoff: float = 3600.0
    timeout: float = 10.0

    @classmethod
    def from_environment(cls) -> DeliverySettings:
        """CAPA_WEBHOOK_ATTEMPTS, CAPA_WEBHOOK_BACKOFF, CAPA_WEBHOOK_MAX_BACKOFF and
        CAPA_WEBHOOK_TIMEOUT of the process that delivers (the server's own settings)."""
        def number(name: str, default: float, low: float, high: float) -> float:
            text = os.environ.get(name, "").strip()
            if not text:
                return default
            try:
                value = float(text)
            except ValueError:
                raise InvalidInput(f"{name} must be a number (got {text!r})") from None
            if not low <= value <= high:
                raise InvalidInput(f"{name} must be {low:g} to {high:g} (got {text})")
            return value

        return cls(attempts=int(number("CAPA_WEBHOOK_ATTEMPTS", cls.attempts, 1, 100)),
                   backoff=number("CAPA_WEBHOOK_BACKOFF", cls.backoff, 0, 86400),
                   max_backoff=number("CAPA_WEBHOOK_MAX_BACKOFF", cls.max_backoff, 0, 604800),
                   timeout=number("CAPA_WEBHOOK_TIMEOUT", cls.timeout, 0.1, 300))

    @property
    def in_flight(self) -> float:
        """How long a send may take at most: after that, a delivery recorded without an
        outcome was abandoned by a dispatcher that stopped."""
        return 2 * self.timeout + 5

    def delay(self, attempts: int) -> float:
        """The wait after the `attempts`-th failed attempt."""
        return float(min(self.max_backoff, self.backoff * 2 ** max(0, attempts - 1)))


class Webhooks:
    """Webhook subscriptions and their deliveries, on the core's store."""

    def __init__(self, core: Core) -> None:
        self.core = core

    # -- subscriptions -----------------------------------------------------------------------

    @operation("webhook add")
    def add(self, url: str, *, events: list[str], reason: str | None = None) -> dict[str, Any]:
        """Subscribe `url` to record events; the result carries the webhook's signing secret,
        shown this once (it is derived again by the server, never stored)."""
        core = self.core
        address, chosen = valid_url(url), valid_events(events)
        key = webhook_key(webhook_key_path(core.recorder), create=True)
        existing = len(self._fold(_WEBHOOK_TOPICS[:1]))
        for number in range(existing + 1, existing + 50):
            ref = f"{WEBHOOK_REF_PREFIX}{number}"
            if core.exists(ref):
                continue
            hook = Webhook.add(ref=ref, url=address, events=chosen,
                               starts_after=core.recorder.max_notification_id() or 0,
                               reason=reason, added_by=core.actor())
            try:
                core.persist(hook)
            except Conflict:
                continue
            return {**_webhook_view(hook), "secret": webhook_secret(key, ref)}
        raise Conflict("could not number the webhook; nothing was written, retry is safe")

    @operation("webhook remove")
    def remove(self, webhook: str, *, reason: str) -> dict[str, Any]:
        """Stop sending to a webhook (its deliveries stay listed)."""
        text = require_reason(reason, "webhook remove")
        hook = self._webhook(webhook)
        hook.remove(text)
        self.core.persist(hook)
        return _webhook_view(hook)

    @operation("webhook list")
    def list_webhooks(self) -> list[dict[str, Any]]:
        """Every webhook, active and removed, in the order they were added."""
        return [_webhook_view(h) for h in self._fold(_WEBHOOK_TOPICS).values()]

    # -- deliveries --------------------------------------------------------------------------

    @operation("webhook deliveries")
    def deliveries(self, webhook: str | None = None, *,
                   failed: bool = False) -> list[dict[str, Any]]:
        """Every delivery (of one webhook), in log order; with `failed` those not delivered."""
        if webhook is not None:
            webhook = self._webhook(webhook).ref
        found = [_delivery_view(d) for d in self._deliveries().values()
                 if webhook in (None, d.webhook) and not (failed and d.status == "delivered")]
        return sorted(found, key=lambda d: (d["position"], d["webhook"]))

    @operation("webhook deliver")
    def deliver(self, *, dry_run: bool = False, retry_failed: bool = False) -> dict[str, Any]:
        """One pass of the dispatcher: send every record event a webhook subscribes to and has
        not had, and retry the failed deliveries whose back-off is over (with `retry_failed`,
        every failed one now, those whose attempts are used up included). With `dry_run`,
        list them only."""
        core = self.core
        settings = DeliverySettings.from_environment()
        report: dict[str, Any] = {"dry_run": dry_run, "delivered": [], "failed": [],
                                  "would_send": [], "waiting": 0}
        hooks = {ref: h for ref, h in ((h.ref, h) for h in self._fold(_WEBHOOK_TOPICS).values())
                 if h.status == "active"}
        if not hooks:
            return report
        moment = dt.datetime.now(dt.UTC)
        now = utc_iso(moment)
        # A delivery recorded but without an outcome is being sent by another dispatcher, or
        # was being sent by one that stopped: it is sent again once that send is surely over.
        abandoned = moment - dt.timedelta(seconds=settings.in_flight)
        known = [d for d in self._deliveries().values() if d.webhook in hooks]
        holding: set[str] = set()
        work: list[tuple[int, str, WebhookDelivery | None]] = []
        for d in known:
            if d.status == "delivered":
                continue
            if d.status == "pending":
                due = d.created_on <= abandoned
            else:
                due = retry_failed or (d.next_attempt_at is not None
                                       and d.next_attempt_at <= now)
            if due:
                work.append((d.position, d.webhook, d))
            else:
                report["waiting"] += 1
                if d.status == "pending" or d.next_attempt_at is not None:
                    holding.add(d.webhook)
        cursors = {ref: max([h.starts_after, *(d.position for d in known if d.webhook == ref)])
                   for ref, h in hooks.items()}
        for position, item in self._events_after(min(cursors.values())):
            kind = event_type_of(item.topic)
            for ref, hook in hooks.items():
                if kind is not None and position > cursors[ref] and hook.wants(kind):
                    work.append((position, ref, None))
        key: bytes | None = None
        for position, ref, existing in sorted(work, key=lambda w: (w[0], w[1])):
            if ref in holding:
                report["waiting"] += 1
                continue
            delivery = existing or self._schedule(ref, position)
            if delivery is None:
                continue  # another dispatcher has it
            if dry_run:
                report["would_send"].append(_delivery_view(delivery))
                continue
            if key is None:
                key = webhook_key(webhook_key_path(core.recorder), create=False)
            if existing is None and not self._save(delivery):
                continue
            ok = self._attempt(delivery, hooks[ref], webhook_secret(key, ref), settings)
            report["delivered" if ok else "failed"].append(_delivery_view(delivery))
            if not ok:
                holding.add(ref)  # the rest wait behind it, in order
        return report

    def _schedule(self, webhook: str, position: int) -> WebhookDelivery | None:
        core = self.core
        found = core.recorder.select_notifications(start=position, limit=1, stop=position)
        if not found:
            return None
        item = found[0]
        record: Any = core.repository.get(UUID(str(item.originator_id)),
                                          version=item.originator_version)
        return WebhookDelivery.schedule(webhook=webhook, position=position,
                                        event_type=str(event_type_of(item.topic)),
                                        record=record.ref,
                                        record_version=item.originator_version)

    def _save(self, delivery: WebhookDelivery) -> bool:
        try:
            self.core.persist(delivery)
        except Conflict:
            return False
        return True

    def _attempt(self, delivery: WebhookDelivery, hook: Webhook, secret: str,
                 settings: DeliverySettings) -> bool:
        body = self._payload(delivery)
        stamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", "User-Agent": f"capa/{capa.__version__}",
                   "X-Capa-Event": delivery.event_type, "X-Capa-Delivery": delivery.delivery_id,
                   "X-Capa-Webhook": hook.ref, "X-Capa-Timestamp": stamp,
                   "X-Capa-Signature": signature(secret, stamp, body)}
        outcome = post(hook.url, body, headers, settings.timeout)
        if outcome.delivered:
            delivery.delivered(http_status=int(outcome.status or 0))
        else:
            attempts = delivery.attempts + 1
            later = None if attempts >= settings.attempts else utc_iso(
                dt.datetime.now(dt.UTC) + dt.timedelta(seconds=settings.delay(attempts)))
            delivery.attempt_failed(http_status=outcome.status, error=str(outcome.error),
                                    next_attempt_at=later)
        self._save(delivery)  # a lost race: the other dispatcher's outcome stands
        return outcome.delivered

    def _payload(self, delivery: WebhookDelivery) -> bytes:
        """The JSON body: what happened, to which record, when and by whom, and the record's
        state after it; no link, no account data, no secret."""
        core = self.core
        found = core.recorder.select_notifications(start=delivery.position, limit=1,
                                                   stop=delivery.position)
        event: Any = core.mapper.to_domain_event(found[0])
        record: Any = core.repository.get(event.originator_id,
                                          version=event.originator_version)
        kind = "nonconformity" if delivery.event_type.startswith("nc.") else \
            "corrective-action"
        actor = str(getattr(event, "actor", "") or "")
        payload = {
            "delivery": delivery.delivery_id, "webhook": delivery.webhook,
            "event": delivery.event_type, "position": delivery.position,
            "record": delivery.record, "kind": kind, "version": delivery.record_version,
            "time": utc_iso(event.timestamp), "actor": actor,
            "actor_name": core.full_name(actor) if actor else None,
            "reason": _text(getattr(event, "reason", None)),
            "summary": {name: _plain(getattr(record, name, None)) for name in _SUMMARY[kind]},
        }
        return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("ascii")

    # -- reading ---------------------------------------------------------------------------

    def _webhook(self, webhook: str) -> Webhook:
        ref = webhook.strip().upper()
        if ref.isdigit():
            ref = f"{WEBHOOK_REF_PREFIX}{ref}"
        try:
            return self.core.load(Webhook, ref)
        except NotFound:
            raise NotFound(f"not found (webhook): {webhook!r} is not a webhook of this "
                           "store (capa webhook list)") from None

    def _deliveries(self) -> dict[str, WebhookDelivery]:
        return {d.ref: d for d in self._fold(_DELIVERY_TOPICS).values()}

    def _fold(self, topics: list[str]) -> dict[UUID, Any]:
        """The records whose events have these topics, folded from the log in one pass."""
        core = self.core
        found: dict[UUID, Record] = {}
        start = 1
        while True:
            batch = core.recorder.select_notifications(start=start, limit=_BATCH, topics=topics)
            for item in batch:
                event: Any = core.mapper.to_domain_event(item)
                found[event.originator_id] = event.mutate(found.get(event.originator_id))
            if len(batch) < _BATCH:
                return found
            start = batch[-1].id + 1

    def _events_after(self, position: int) -> Iterator[tuple[int, Any]]:
        """The NC and CA events after `position`, up to the end of the log as it is now."""
        core = self.core
        last = core.recorder.max_notification_id() or 0
        start = position + 1
        while start <= last:
            batch = core.recorder.select_notifications(start=start, limit=_BATCH, stop=last,
                                                       topics=_RECORD_TOPICS)
            for item in batch:
                yield item.id, item
            if len(batch) < _BATCH:
                return
            start = batch[-1].id + 1


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return str(value)


def _webhook_view(hook: Webhook) -> dict[str, Any]:
    return {"id": hook.ref, "status": hook.status, "version": hook.version, "url": hook.url,
            "events": list(hook.events), "added_at": utc_iso(hook.created_on),
            "added_by": hook.added_by,
            "reason": hook.reason, "removed_reason": getattr(hook, "removed_reason", None)}


def _delivery_view(d: WebhookDelivery) -> dict[str, Any]:
    return {"id": d.ref, "delivery": d.delivery_id, "webhook": d.webhook,
            "event": d.event_type, "record": d.record, "record_version": d.record_version,
            "position": d.position, "status": d.status, "attempts": d.attempts,
            "http_status": d.last_status, "error": d.last_error,
            "next_attempt_at": d.next_attempt_at, "delivered_at": d.delivered_at}
