"""The typed parts of a record's state: signatures, action items, analyses, approvals,
verifications, effectiveness checks, impact assessments, containment and assessments.

They are typed dictionaries, not classes: each part is folded from an event's JSON and is that
JSON (the content digest a signature binds is computed over it, R9; the read tables and
`show` print it), so a typed dictionary gives every part a checked shape (`mypy --strict` knows
each key and its type) without a conversion at any boundary and without changing one byte of any
stored event, snapshot digest or signed content. Keys that only some records hold are
`NotRequired`: records of earlier releases never had them, and their folded state, and so the
digests their signatures bound, must stay exactly as it was.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict

__all__ = [
    "ActionItem",
    "Analysis",
    "Approval",
    "Assessment",
    "CAClosure",
    "Cancellation",
    "Check",
    "CheckExtension",
    "Containment",
    "EvidenceRef",
    "Extension",
    "Impact",
    "NCClosure",
    "Signature",
    "Verification",
]


class Signature(TypedDict):
    """An electronic signature as a record keeps it (R9, SPEC §9.2): who, the printed name, the
    meaning, the content signed, when; a digital one also the algorithm, the signer's key and
    the Ed25519 signature (a password-attested one of an earlier release has none of these)."""

    user_id: str
    full_name: str
    meaning: str
    content_sha256: str
    signed_version: int
    signed_at: NotRequired[str]
    algorithm: NotRequired[str]
    key_id: NotRequired[str]
    signature: NotRequired[str]


class EvidenceRef(TypedDict):
    """A file kept as evidence: its name, size and type, and the SHA-256 of the bytes the store
    holds (capa evidence get gives them back)."""

    name: str
    size: int
    media_type: str
    sha256: str


#: A due date moved later (R5): "from" and "to" are the old and new dates.
Extension = TypedDict("Extension", {"from": str, "to": str, "reason": str, "by": str,
                                    "at": str})


class ActionItem(TypedDict):
    """One action of a CA's plan, from planning to completion."""

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
    evidence: list[EvidenceRef]
    completed_by: str | None
    completed_at: str | None
    extensions: list[Extension]
    past_due_reason: NotRequired[str]
    recorded_by: NotRequired[str]
    on_behalf_reason: NotRequired[str]


class Analysis(TypedDict):
    """One root-cause analysis (one per investigation, each iteration's kept)."""

    method: str
    whys: list[str]
    root_cause: str
    category: str
    iteration: int
    by: str
    at: str


class Approval(TypedDict):
    """A plan's approval; voided when the plan grows after it."""

    iteration: int
    voided: bool
    signature: Signature


class Verification(TypedDict):
    """The verdict on an iteration's effectiveness, signed; with the criteria of the check it
    answers when one was planned."""

    iteration: int
    effective: bool
    note: str
    evidence: list[EvidenceRef]
    signature: Signature
    criteria: NotRequired[str]


#: An inconclusive check extended to a later date, signed.
CheckExtension = TypedDict("CheckExtension", {"from": str, "to": str, "reason": str,
                                              "note": str, "evidence": list[EvidenceRef],
                                              "signature": Signature})


class Check(TypedDict):
    """An effectiveness check planned up front (SPEC §12)."""

    iteration: int
    criteria: str
    method: str | None
    due: str
    state: str
    planned_by: str
    planned_at: str
    extensions: list[CheckExtension]
    reason: NotRequired[str]


class Impact(TypedDict):
    """That the actions do no harm (R11, ISO 13485 8.5.2 e), with the references showing it."""

    iteration: int
    statement: str
    risk_file: str | None
    changes: list[str]
    training: list[str]
    by: str
    at: str


class CAClosure(TypedDict):
    closed_ncs: list[str]
    signature: Signature


class Cancellation(TypedDict):
    by: str
    at: str
    reason: str
    cancelled_on: NotRequired[str | None]


class Containment(TypedDict):
    """An immediate action on a nonconformity and the disposition of what it affected."""

    action: str
    disposition: str
    by: str
    at: str
    location: NotRequired[str]


class Assessment(TypedDict):
    """A nonconformity's risk (impact × likelihood) and whether it needs a corrective action."""

    impact: int
    likelihood: int
    risk: int
    risk_level: str
    capa_required: bool
    rationale: str | None
    by: str
    at: str


class NCClosure(TypedDict):
    """A closure: signed on its own, or with the CA that closed it (no signature of its own),
    or migrated closed with its legacy date."""

    by: str
    at: str
    with_ca: str | None
    signature: Signature | None
    closed_on: NotRequired[str | None]
    migrated: NotRequired[bool]
