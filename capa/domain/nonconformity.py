"""The nonconformity record, its lifecycle (SPEC §1.1), and its schema: the one declaration of
the fields an NC is raised with, from which the import's fast path and the read tables derive."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from json.encoder import encode_basestring
from typing import Any, Literal, cast

from eventsourcing.domain import event

from capa.domain.errors import InvalidInput, RuleViolation
from capa.domain.parts import (
    Assessment,
    Cancellation,
    Containment,
    NCClosure,
    Signature,
)
from capa.domain.record import Record, require_reason
from capa.domain.values import (
    AMENDABLE_NC_FIELDS,
    LINE_LIMIT,
    TEXT_LIMIT,
    Disposition,
    NCStatus,
    Severity,
    Source,
    choice,
    optional_line,
    parse_date,
    require_line,
    require_text,
    risk_level,
)


@dataclass(frozen=True)
class NCField:
    """One field an NC is raised with: its name, its kind, whether it must be given, and (for
    a choice) its vocabulary."""

    name: str
    kind: Literal["line", "text", "choice", "date"]
    required: bool
    vocabulary: type[StrEnum] | None = None

    @property
    def limit(self) -> int:
        """The most characters a value may have (a choice or a date as given, before it is
        read)."""
        return TEXT_LIMIT if self.kind == "text" else LINE_LIMIT

    @property
    def one_line(self) -> bool:
        return self.kind == "line"

    def clean(self, value: str | None) -> str | None:
        """The value as an NC holds it, or InvalidInput saying why it cannot be."""
        if self.kind == "text":
            return require_text(value, self.name)
        if self.kind == "line":
            return require_line(value, self.name) if self.required \
                else optional_line(value, self.name)
        if self.kind == "choice":
            assert self.vocabulary is not None
            return choice(self.vocabulary, value or "", self.name).value
        day = parse_date((value or "").strip(), self.name)
        if day > dt.datetime.now(dt.UTC).date():
            raise InvalidInput(f"{self.name} {day} is in the future")
        return day.isoformat()


#: The fields an NC is raised with, in the order its Raised event stores them.
NC_SCHEMA = (
    NCField("title", "line", required=True),
    NCField("description", "text", required=True),
    NCField("source", "choice", required=True, vocabulary=Source),
    NCField("severity", "choice", required=True, vocabulary=Severity),
    NCField("product", "line", required=False),
    NCField("lot", "line", required=False),
    NCField("external_ref", "line", required=False),
    # Today when not given; never in the future.
    NCField("detected_on", "date", required=False),
)
NC_FIELD = {spec.name: spec for spec in NC_SCHEMA}
NC_FIELDS = tuple(NC_FIELD)
NC_REQUIRED = tuple(spec.name for spec in NC_SCHEMA if spec.required)
NC_LINE_FIELDS = tuple(spec.name for spec in NC_SCHEMA if spec.one_line)
#: The state a Raised event of this release stores, in order, after eventsourcing's own keys
#: (`timestamp`, `originator_topic`) and the actor: the record's reference, its fields, and who
#: reported it.
RAISED_FIELDS = ("ref", *NC_FIELDS, "reported_by")
RAISED_KEYS = frozenset({"timestamp", "originator_topic", "actor", *RAISED_FIELDS})


#: The JSON members of an NC's fields, as the transcoder writes them in a Raised event's state.
_MEMBERS = ",".join(f'"{name}":%s' for name in NC_FIELDS)


def raised_fields_json(fields: Mapping[str, Sequence[str | None]]) -> list[str]:
    """Per row, the JSON members `"title":…,…,"detected_on":…` of validated NC fields (a
    column each): the run of members a Raised event's state and its NC's read-table document
    have in common (keys in the event's order, compact, not ASCII-escaped), so that each value
    is escaped once, for both."""
    return [_MEMBERS % row
            for row in zip(*(_quoted(fields[name]) for name in NC_FIELDS), strict=True)]


def _quoted(cells: Sequence[str | None]) -> list[str]:
    """Each cell as a JSON string (`null` for None), a column at a time: a value that repeats
    (a vocabulary word, a date, a product) is escaped once."""
    distinct = set(cells)
    if len(distinct) <= len(cells) // 2:
        texts = {cell: "null" if cell is None else encode_basestring(cell) for cell in distinct}
        return list(map(texts.__getitem__, cells))
    if None not in distinct:
        return list(map(encode_basestring, cast("Sequence[str]", cells)))
    return ["null" if cell is None else encode_basestring(cell) for cell in cells]


def fresh_state() -> dict[str, Any]:
    """What an NC holds besides the fields it was raised with, until its first change."""
    return {"status": NCStatus.OPEN.value, "containment": [], "assessment": None,
            "linked_cas": [], "closure": None, "cancellation": None}


class Nonconformity(Record):
    """Something that went wrong: raised, contained, assessed, linked to CAs, closed."""

    @classmethod
    def raise_new(
        cls,
        *,
        ref: str,
        title: str,
        description: str,
        source: str,
        severity: str,
        detected_on: str,
        reported_by: str,
        product: str | None = None,
        lot: str | None = None,
        external_ref: str | None = None,
    ) -> Nonconformity:
        """A new NC; `detected_on` is an ISO date the caller has read and checked."""
        given = {"title": title, "description": description, "source": source,
                 "severity": severity, "product": product, "lot": lot,
                 "external_ref": external_ref}
        fields: dict[str, Any] = {name: NC_FIELD[name].clean(value)
                                  for name, value in given.items()}
        return cls(ref=ref, **fields, detected_on=detected_on, reported_by=reported_by)

    @event("Raised")
    def __init__(
        self,
        ref: str,
        title: str,
        description: str,
        source: str,
        severity: str,
        product: str | None,
        lot: str | None,
        external_ref: str | None,
        detected_on: str,
        reported_by: str,
    ) -> None:
        self.ref = ref
        self.title = title
        self.description = description
        self.source = source
        self.severity = severity
        self.product = product
        self.lot = lot
        self.external_ref = external_ref
        self.detected_on = detected_on
        self.reported_by = reported_by
        self.status = NCStatus.OPEN.value
        self.containment: list[Containment] = []
        self.assessment: Assessment | None = None
        self.linked_cas: list[str] = []
        self.closure: NCClosure | None = None
        self.cancellation: Cancellation | None = None

    # -- containment and assessment ------------------------------------------------------

    def contain(
        self, action: str, disposition: str = "none", location: str | None = None
    ) -> None:
        self._require_status("contain", NCStatus.OPEN, NCStatus.CONTAINED)
        self._contained(
            action=require_text(action, "containment action"),
            disposition=choice(Disposition, disposition, "disposition").value,
            location=optional_line(location, "location"),
        )

    class Contained(Record.Event):
        """Containment recorded. Version 2 adds where it was done (`location`); events stored
        before it are read with no location."""

        class_version = 2
        action: str
        disposition: str
        location: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["location"] = None

    @event(Contained)
    def _contained(self, action: str, disposition: str, location: str | None) -> None:
        entry: Containment = {"action": action, "disposition": disposition,
                              "by": self.event_actor, "at": self.event_time}
        # Only when given, so that a record's content, and the digest a signature binds (R9),
        # stays what it was for containment recorded before locations existed.
        if location is not None:
            entry["location"] = location
        self.containment.append(entry)
        self.status = NCStatus.CONTAINED.value

    def assess(
        self, impact: int, likelihood: int, capa_required: bool, rationale: str | None = None
    ) -> None:
        self._require_status("assess", NCStatus.OPEN, NCStatus.CONTAINED)
        for name, value in (("impact", impact), ("likelihood", likelihood)):
            if not 1 <= value <= 5:
                raise InvalidInput(f"{name} must be between 1 and 5 (got {value})")
        text = (rationale or "").strip() or None
        if not capa_required and text is None:
            raise RuleViolation(
                "R1", f"{self.ref} needs a written rationale when no corrective action is required"
            )
        self._assessed(
            impact=impact, likelihood=likelihood, capa_required=capa_required, rationale=text
        )

    @event("Assessed")
    def _assessed(
        self, impact: int, likelihood: int, capa_required: bool, rationale: str | None
    ) -> None:
        score = impact * likelihood
        self.assessment = {
            "impact": impact,
            "likelihood": likelihood,
            "risk": score,
            "risk_level": risk_level(score),
            "capa_required": capa_required,
            "rationale": rationale,
            "by": self.event_actor,
            "at": self.event_time,
        }
        self.status = NCStatus.ASSESSED.value

    # -- links and closure ---------------------------------------------------------------

    @property
    def capa_required(self) -> bool:
        return bool(self.assessment and self.assessment["capa_required"])

    def link(self, ca_ref: str) -> None:
        self._require_status("link", NCStatus.ASSESSED)
        if not self.capa_required:
            raise RuleViolation(
                "R7", f"{self.ref} was assessed as needing no corrective action; "
                "reassess it before linking one"
            )
        self._linked(ca=ca_ref)

    @event("LinkedToCorrectiveAction")
    def _linked(self, ca: str) -> None:
        if ca not in self.linked_cas:
            self.linked_cas.append(ca)
        self.status = NCStatus.LINKED.value

    def close(self, signature: Signature) -> None:
        if self.status == NCStatus.LINKED:
            raise RuleViolation(
                "R4", f"{self.ref} closes with its corrective action "
                f"{', '.join(self.linked_cas)} once effectiveness is verified"
            )
        self._require_status("close", NCStatus.ASSESSED)
        if self.capa_required:
            raise RuleViolation(
                "R4", f"{self.ref} needs a corrective action; link one and close it"
            )
        self._closed(signature=signature)

    @event("Closed")
    def _closed(self, signature: Signature) -> None:
        self.closure = {"by": self.event_actor, "at": self.event_time, "with_ca": None,
                        "signature": {**signature, "signed_at": self.event_time}}
        self.status = NCStatus.CLOSED.value

    def close_with(self, ca_ref: str) -> None:
        """Closed as part of its corrective action's closure (R4), in the same atomic save."""
        self._require_status("close", NCStatus.LINKED)
        self._closed_with_ca(ca=ca_ref)

    @event("ClosedWithCorrectiveAction")
    def _closed_with_ca(self, ca: str) -> None:
        self.closure = {"by": self.event_actor, "at": self.event_time, "with_ca": ca,
                        "signature": None}
        self.status = NCStatus.CLOSED.value

    # -- migration from a legacy register -------------------------------------------------

    def migrate(self, provenance: dict[str, Any], status: str, closed_on: str | None,
                ca: str | None, reason: str) -> None:
        """The steps before this record's first capa event happened in a legacy system: the
        event names where the record came from and brings it to its legacy state (SPEC §10).
        Only a record just raised, and never migrated before, may be migrated."""
        if self.version != 1 or getattr(self, "migration", None) is not None:
            raise RuleViolation("R7", f"{self.ref} was not just raised; it cannot be migrated")
        if status not in (NCStatus.OPEN, NCStatus.CLOSED, NCStatus.CANCELLED):
            raise InvalidInput(f"legacy status must be open, closed or cancelled (got {status!r})")
        self._migrated(provenance=provenance, legacy_status=status, closed_on=closed_on, ca=ca,
                       reason=reason)

    class Migrated(Record.Event):
        """Imported from a legacy register: source system and file (name and SHA-256), the row,
        the legacy values as given, the legacy status and its date, the CA made for it."""

        class_version = 1
        provenance: dict[str, Any]
        legacy_status: str
        closed_on: str | None
        ca: str | None
        reason: str

    @event(Migrated)
    def _migrated(self, provenance: dict[str, Any], legacy_status: str, closed_on: str | None,
                  ca: str | None, reason: str) -> None:
        self.migration = {"note": reason, **provenance, "legacy_status": legacy_status,
                          "closed_on": closed_on, "ca": ca, "by": self.event_actor,
                          "at": self.event_time}
        if ca is not None and ca not in self.linked_cas:
            self.linked_cas.append(ca)
        if legacy_status == NCStatus.CLOSED:
            # No signature: none was made in capa. `closed_on` is the legacy business date the
            # read models report; `at` stays the time the record reached this state in capa.
            self.closure = {"by": self.event_actor, "at": self.event_time, "with_ca": ca,
                            "signature": None, "closed_on": closed_on, "migrated": True}
            self.status = NCStatus.CLOSED.value
        elif legacy_status == NCStatus.CANCELLED:
            self.cancellation = {"by": self.event_actor, "at": self.event_time,
                                 "reason": reason, "cancelled_on": closed_on}
            self.status = NCStatus.CANCELLED.value
        elif ca is not None:
            self.status = NCStatus.LINKED.value

    # -- corrections ---------------------------------------------------------------------

    def cancel(self, reason: str) -> None:
        self._require_active("cancel")
        self._cancelled(reason=require_reason(reason, "cancelling"))

    @event("Cancelled")
    def _cancelled(self, reason: str) -> None:
        self.cancellation = {"by": self.event_actor, "at": self.event_time, "reason": reason}
        self.status = NCStatus.CANCELLED.value

    def reopen(self, reason: str) -> None:
        self._require_status("reopen", NCStatus.CLOSED, NCStatus.CANCELLED)
        self._reopened(reason=require_reason(reason, "reopening"))

    @event("Reopened")
    def _reopened(self, reason: str) -> None:
        # The earlier assessment, links and closure stay in the history; triage starts again.
        self.assessment = None
        self.closure = None
        self.cancellation = None
        self.status = NCStatus.OPEN.value

    def amend(self, field_name: str, value: str, reason: str) -> None:
        if field_name not in AMENDABLE_NC_FIELDS:
            raise InvalidInput(
                f"field must be one of: {', '.join(AMENDABLE_NC_FIELDS)} (got {field_name!r})"
            )
        self._require_active("amend")
        new = NC_FIELD[field_name].clean(value)
        old = getattr(self, field_name)
        if old == new:
            raise InvalidInput(f"{field_name} of {self.ref} is already "
                               f"{'empty' if new is None else repr(new)}")
        self._amended(field=field_name, old=old, new=new,
                      reason=require_reason(reason, "amending"))

    @event("Amended")
    def _amended(self, field: str, old: str | None, new: str | None, reason: str) -> None:
        setattr(self, field, new)
