"""View models returned by queries: plain data, never aggregates."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)


class View(BaseModel):
    model_config = ConfigDict(frozen=True)


class Signature(View):
    user_id: str
    full_name: str
    meaning: str
    signed_at: str
    content_sha256: str
    signed_version: int
    #: The digital signature (SPEC §9.2): absent from signatures made before it, and then left
    #: out of the view too, which shows exactly the record's content (docs/audit.md recipe).
    algorithm: str | None = None
    key_id: str | None = None
    signature: str | None = None

    @model_serializer(mode="wrap")
    def _without_absent(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for name in ("algorithm", "key_id", "signature"):
            if data.get(name) is None:
                data.pop(name, None)
        return data


class HistorySignature(Signature):
    """A signature as history reports it: "digital" (Ed25519 over the signature manifest) or
    "password-attested" (made before digital signatures: the password was checked, nothing
    was signed)."""

    kind: str

    @model_validator(mode="before")
    @classmethod
    def _kind(cls, data: Any) -> Any:
        if isinstance(data, dict) and "kind" not in data:
            return {**data, "kind": "digital" if data.get("signature") else "password-attested"}
        return data


class Containment(View):
    action: str
    disposition: str
    location: str | None = None
    by: str
    at: str


class Assessment(View):
    impact: int
    likelihood: int
    risk: int
    risk_level: str
    capa_required: bool
    rationale: str | None
    by: str
    at: str


class Correction(View):
    by: str
    at: str
    reason: str


class NCClosure(View):
    by: str
    at: str
    with_ca: str | None
    signature: Signature | None


class _MaybeMigrated(View):
    """A record that may have been migrated from a legacy register (SPEC §10): `migration`
    says from where, by whom and in which legacy state; records that were not leave it out."""

    migration: dict[str, Any] | None = None
    #: Fields that records without them do not show at all (added in later releases).
    absent_when_none: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _without_migration(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for name in self.absent_when_none:
            if data.get(name) is None:
                data.pop(name, None)
        migration = data.pop("migration", None)
        if migration is None:
            return data
        # Said right after the status: it is what the record's state rests on.
        ordered: dict[str, Any] = {}
        for key, value in data.items():
            ordered[key] = value
            if key == "status":
                ordered["migration"] = migration
        return ordered


class NonconformityView(_MaybeMigrated):
    id: str
    kind: str = "nonconformity"
    status: str
    version: int
    title: str
    description: str
    source: str
    severity: str
    product: str | None
    lot: str | None
    external_ref: str | None
    detected_on: str
    reported_by: str
    containment: list[Containment]
    assessment: Assessment | None
    linked_cas: list[str]
    closure: NCClosure | None
    cancellation: Correction | None
    created_at: str
    updated_at: str


class Analysis(View):
    method: str
    whys: list[str]
    root_cause: str
    category: str
    iteration: int
    by: str
    at: str


class Evidence(View):
    name: str
    size: int
    media_type: str
    sha256: str


class Extension(View):
    from_: str
    to: str
    reason: str
    by: str
    at: str

    model_config = ConfigDict(frozen=True, populate_by_name=True,
                              alias_generator=lambda f: "from" if f == "from_" else f,
                              serialize_by_alias=True)


class ActionItem(View):
    number: str
    text: str
    assignee: str
    due: str
    type: str
    state: str
    iteration: int
    planned_by: str
    planned_at: str
    note: str | None
    evidence: list[Evidence]
    completed_by: str | None
    completed_at: str | None
    extensions: list[Extension]
    #: Why a due date already past was accepted when the item was planned.
    past_due_reason: str | None = None
    #: Who recorded the completion, when not the one who did the work, and why.
    recorded_by: str | None = None
    on_behalf_reason: str | None = None

    @model_serializer(mode="wrap")
    def _without_absent(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Shown only when recorded, as the record holds them: the item then reads exactly as
        # it was signed (the content digest of docs/audit.md).
        data: dict[str, Any] = handler(self)
        for name in ("past_due_reason", "recorded_by", "on_behalf_reason"):
            if data.get(name) is None:
                data.pop(name, None)
        return data


class Approval(View):
    iteration: int
    voided: bool
    signature: Signature


class Verification(View):
    iteration: int
    effective: bool
    note: str
    evidence: list[Evidence]
    signature: Signature
    #: The criteria of the check it answers, when one was planned (SPEC §12).
    criteria: str | None = None

    @model_serializer(mode="wrap")
    def _without_absent(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("criteria") is None:
            data.pop("criteria", None)
        return data


class CheckExtension(View):
    """An inconclusive outcome of a planned check: extended, with a reason, signed."""

    from_: str
    to: str
    reason: str
    note: str
    evidence: list[Evidence]
    signature: Signature

    model_config = ConfigDict(frozen=True, populate_by_name=True,
                              alias_generator=lambda f: "from" if f == "from_" else f,
                              serialize_by_alias=True)


class EffectivenessCheck(View):
    """What will prove the actions of an iteration effective, how and by when (SPEC §12);
    `state` is planned, replaced (by a later plan, whose `reason` says why), effective or
    not-effective."""

    iteration: int
    criteria: str
    method: str | None
    due: str
    state: str
    planned_by: str
    planned_at: str
    extensions: list[CheckExtension]
    reason: str | None = None

    @model_serializer(mode="wrap")
    def _without_absent(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("reason") is None:
            data.pop("reason", None)
        return data


class ImpactAssessment(View):
    """R11 (ISO 13485 8.5.2 e): the actions do not adversely affect safety, performance or
    regulatory compliance, and the references that show it."""

    iteration: int
    statement: str
    risk_file: str | None
    changes: list[str]
    training: list[str]
    by: str
    at: str


class CAClosure(View):
    closed_ncs: list[str]
    signature: Signature


class CorrectiveActionView(_MaybeMigrated):
    id: str
    kind: str = "corrective-action"
    status: str
    version: int
    title: str
    problem: str
    owner: str
    linked_ncs: list[str]
    iteration: int
    root_cause: Analysis | None
    analyses: list[Analysis]
    items: list[ActionItem]
    approvals: list[Approval]
    verifications: list[Verification]
    #: Planned effectiveness checks and impact assessments (SPEC §12): left out of records
    #: that have none, which then read exactly as they were signed.
    checks: list[EffectivenessCheck] | None = None
    impacts: list[ImpactAssessment] | None = None
    closure: CAClosure | None
    cancellation: Correction | None
    created_at: str
    updated_at: str

    absent_when_none: ClassVar[tuple[str, ...]] = ("checks", "impacts")


class Change(View):
    field: str
    old: Any = None
    new: Any = None


class HistoryEntry(View):
    position: int
    version: int
    time: str
    actor: str
    actor_name: str | None
    event_type: str
    changes: list[Change]
    reason: str | None
    signature: HistorySignature | None


class OverdueItem(View):
    kind: str
    ca: str
    action: str | None
    title: str
    owner: str
    assignee: str | None
    due: str | None
    days_overdue: int | None
    status: str
