"""Vocabularies of the quality domain (SPEC §1) and small pure helpers over them."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import TypeVar

from capa.domain.errors import InvalidInput


class Source(StrEnum):
    CUSTOMER_COMPLAINT = "customer-complaint"
    INTERNAL_AUDIT = "internal-audit"
    EXTERNAL_AUDIT = "external-audit"
    SUPPLIER = "supplier"
    PROCESS = "process"
    PRODUCT = "product"
    REGULATORY_INSPECTION = "regulatory-inspection"
    OTHER = "other"


class Severity(StrEnum):
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"


class Disposition(StrEnum):
    QUARANTINE = "quarantine"
    REWORK = "rework"
    SCRAP = "scrap"
    USE_AS_IS = "use-as-is"
    RETURN_TO_SUPPLIER = "return-to-supplier"
    NONE = "none"


class RootCauseMethod(StrEnum):
    FIVE_WHYS = "5-whys"
    ISHIKAWA = "ishikawa"
    EIGHT_D = "8d"
    FAULT_TREE = "fault-tree"
    OTHER = "other"


class CauseCategory(StrEnum):
    """Ishikawa 6M."""

    MAN = "man"
    MACHINE = "machine"
    METHOD = "method"
    MATERIAL = "material"
    MEASUREMENT = "measurement"
    ENVIRONMENT = "environment"


class ActionType(StrEnum):
    CORRECTION = "correction"
    CORRECTIVE = "corrective"
    PREVENTIVE = "preventive"


class NCStatus(StrEnum):
    OPEN = "open"
    CONTAINED = "contained"
    ASSESSED = "assessed"
    LINKED = "linked"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class CAStatus(StrEnum):
    OPEN = "open"
    INVESTIGATED = "investigated"
    PLANNED = "planned"
    APPROVED = "approved"
    IMPLEMENTED = "implemented"
    VERIFIED = "verified"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class SignatureMeaning(StrEnum):
    APPROVAL = "approval"
    VERIFICATION = "verification"


AMENDABLE_NC_FIELDS = ("title", "description", "product", "lot", "severity", "source",
                       "external_ref")


E = TypeVar("E", bound=StrEnum)


def choice(enum: type[E], value: str, what: str) -> E:
    """Parse a vocabulary word, naming the allowed words when it is not one of them."""
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(member.value for member in enum)
        raise InvalidInput(f"{what} must be one of: {allowed} (got {value!r})") from None


def parse_date(value: str, what: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value) if len(value) == 10 else _bad_date(value, what)
    except ValueError:
        return _bad_date(value, what)


def _bad_date(value: str, what: str) -> dt.date:
    raise InvalidInput(f"{what} must be a date YYYY-MM-DD (got {value!r})")


def risk_level(score: int) -> str:
    """Risk level of impact x likelihood (1..25), per SPEC §1.1."""
    if score <= 4:
        return "low"
    if score <= 9:
        return "medium"
    if score <= 16:
        return "high"
    return "critical"


def require_text(value: str | None, what: str) -> str:
    text = (value or "").strip()
    if not text:
        raise InvalidInput(f"{what} must not be empty")
    return text
