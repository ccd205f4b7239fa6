"""Base of every capa aggregate: each event carries who did it (R8) and exposes when."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
from contextvars import ContextVar
from dataclasses import field
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from capa.domain.errors import RuleViolation

#: The acting user's id, set by the application around each command (contentmanagement style).
actor_id: ContextVar[str] = ContextVar("capa_actor_id", default="")

_NAMESPACE = uuid5(NAMESPACE_URL, "urn:capa:record")


def record_uuid(ref: str) -> UUID:
    """The aggregate id of a human reference: the same ref always gives the same id, so two
    writers who pick the same number collide in the event store instead of both succeeding."""
    return uuid5(_NAMESPACE, ref)


def record_hex(ref: str) -> str:
    """`record_uuid(ref).hex`, without building a UUID object (bulk import makes thousands)."""
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + ref.encode("utf-8")).digest()[:16])
    digest[6] = digest[6] & 0x0F | 0x50  # version 5
    digest[8] = digest[8] & 0x3F | 0x80  # RFC 4122 variant
    return digest.hex()


_NAMESPACE_BYTES = _NAMESPACE.bytes


def utc_iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class Record(Aggregate):
    """An event-sourced quality record with a human reference such as NC-2026-0001."""

    ref: str
    status: str

    class Event(Aggregate.Event):
        actor: str = field(default_factory=actor_id.get, init=False)

        def mutate(self, aggregate: Any) -> Any:
            # Event bodies must not read the clock; they read the event's own time and actor.
            if aggregate is not None:
                aggregate.__dict__["_applying"] = (utc_iso(self.timestamp), self.actor)
            return super().mutate(aggregate)

    class Created(Event, Aggregate.Created):
        pass

    @staticmethod
    def create_id(ref: str) -> UUID:
        return record_uuid(ref)

    def trigger_event(self, event_class: Any, **kwargs: Any) -> None:
        # A digital signature signs its own time (SPEC §9.2); the event that records it carries
        # that very time, so that the record as of the signature's time is the signed result.
        signature = kwargs.get("signature")
        if isinstance(signature, dict) and signature.get("signature") \
                and kwargs.get("timestamp") is None:
            kwargs["timestamp"] = dt.datetime.fromisoformat(
                str(signature["signed_at"]).replace("Z", "+00:00"))
        super().trigger_event(event_class, **kwargs)

    @property
    def event_time(self) -> str:
        """UTC time of the event being applied (valid inside event bodies)."""
        return str(self.__dict__["_applying"][0])

    @property
    def event_actor(self) -> str:
        return str(self.__dict__["_applying"][1])

    def fields(self) -> dict[str, Any]:
        """The record's business state: every public attribute, deep-copied."""
        return {k: copy.deepcopy(v) for k, v in self.__dict__.items() if not k.startswith("_")}

    def content_digest(self) -> str:
        """SHA-256 of the record's canonical state; a signature stores it to bind itself to the
        exact content the signer saw (R9)."""
        state = {"id": self.ref, "version": self.version, **self.fields()}
        canonical = json.dumps(state, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def _require_status(self, command: str, *allowed: str) -> None:
        if self.status not in allowed:
            raise RuleViolation(
                "R7",
                f"cannot {command} {self.ref} while it is {self.status} "
                f"(allowed when {' or '.join(allowed)})",
            )

    def _require_active(self, command: str) -> None:
        if self.status in ("closed", "cancelled"):
            raise RuleViolation("R7", f"cannot {command} {self.ref}: it is {self.status}")


def require_reason(reason: str | None, command: str) -> str:
    text = (reason or "").strip()
    if not text:
        raise RuleViolation("R6", f"{command} needs a reason")
    return text
