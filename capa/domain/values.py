"""Vocabularies of the quality domain (SPEC §1) and small pure helpers over them."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
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
    #: The audit trail of a period was reviewed (EU GMP Annex 11 §9): see capa.domain.trail_review.
    REVIEW = "review"


class Profile(StrEnum):
    """What a store is run under (SPEC §12): ISO 9001 alone, or ISO 13485 for medical devices,
    which adds R11 (no CA closes before its actions were shown to do no harm, 8.5.2 e)."""

    ISO9001 = "iso9001"
    ISO13485 = "iso13485"


class CheckOutcome(StrEnum):
    """The outcome of a planned effectiveness check (SPEC §12)."""

    EFFECTIVE = "effective"
    NOT_EFFECTIVE = "not-effective"
    INCONCLUSIVE = "inconclusive"


AMENDABLE_NC_FIELDS = ("title", "description", "product", "lot", "severity", "source",
                       "external_ref", "detected_on")


E = TypeVar("E", bound=StrEnum)


def choice(enum: type[E], value: str, what: str) -> E:
    """Parse a vocabulary word, naming the allowed words when it is not one of them."""
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(member.value for member in enum)
        raise InvalidInput(f"{what} must be one of: {allowed} (got {value!r})") from None


def parse_date(value: str, what: str) -> dt.date:
    """A date option of the command line, read by the same parser as an import's date cells
    (capa.domain.dates): the two agree on every value."""
    from capa.domain.dates import parse_day

    try:
        return parse_day(value, option=False)
    except ValueError as exc:
        raise InvalidInput(f"{what} must be a date YYYY-MM-DD: {exc}") from None


def risk_level(score: int) -> str:
    """Risk level of impact x likelihood (1..25), per SPEC §1.1."""
    if score <= 4:
        return "low"
    if score <= 9:
        return "medium"
    if score <= 16:
        return "high"
    return "critical"


#: The longest one-line value (titles, product, lot, references) and the longest text.
LINE_LIMIT = 1_000
TEXT_LIMIT = 20_000
#: Control characters (line breaks, tabs, bells…), which a one-line value may not hold.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def has_visible(text: str) -> bool:
    """Whether text shows anything: not only spaces and invisible format characters such as
    the zero-width space."""
    if text and not text[0].isspace() and unicodedata.category(text[0]) != "Cf":
        return True  # the common case, decided by the first character
    return any(not ch.isspace() and unicodedata.category(ch) != "Cf" for ch in text)


def require_text(value: str | None, what: str, *, limit: int = TEXT_LIMIT) -> str:
    text = (value or "").strip()
    if not has_visible(text):
        raise InvalidInput(f"{what} must not be empty")
    if len(text) > limit:
        raise InvalidInput(f"{what} is {len(text):,} characters long; at most {limit:,}")
    return text


def require_line(value: str | None, what: str) -> str:
    """Text for a one-line field: not empty, one line, at most LINE_LIMIT characters."""
    text = require_text(value, what, limit=LINE_LIMIT)
    if CONTROL.search(text):
        raise InvalidInput(f"{what} must be one line, without tabs or control characters")
    return text


#: The longest printed name (of a person, or of a service account) and token label.
NAME_LIMIT = 200


def require_name(value: str | None, what: str) -> str:
    """A printed name or label: one line without control characters, at most NAME_LIMIT
    characters (it is shown on signatures, reports and lists, R9)."""
    text = require_line(value, what)
    if len(text) > NAME_LIMIT:
        raise InvalidInput(f"{what} is {len(text):,} characters long; at most {NAME_LIMIT}")
    return text


def optional_line(value: str | None, what: str) -> str | None:
    """A one-line field that may be left empty (None)."""
    text = (value or "").strip()
    return require_line(text, what) if has_visible(text) else None


#: An e-mail address capa sends to: a dot-atom local part and a domain of DNS labels, ASCII
#: only (RFC 5321/5322 without quoted local parts, comments or address literals). Anything a
#: mail header could read as more than one address, or as another header, is refused.
_EMAIL = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z](?:[A-Za-z0-9-]{0,61}"
    r"[A-Za-z0-9])?$")
_EMAIL_LIMIT = 254


def valid_email(value: str) -> str:
    """The address as capa records it (the domain in lower case), or InvalidInput. A line break
    or any other control character is refused outright, never stripped: an address that reaches
    a mail header must be exactly one address."""
    if any(ord(ch) < 0x20 or 0x7f <= ord(ch) <= 0x9f for ch in value or ""):
        raise InvalidInput("an e-mail address must be one line, without control characters")
    text = (value or "").strip()
    if len(text) > _EMAIL_LIMIT or not _EMAIL.match(text):
        raise InvalidInput(f"{text[:80]!r} is not an e-mail address capa can send to (the form "
                           "name@example.com, ASCII letters, digits and . _ + - only)")
    local, _, domain = text.rpartition("@")
    return f"{local}@{domain.lower()}"
