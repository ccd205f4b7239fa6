"""The reference of an NC or a CA, such as `NC-2026-0001`: its kind, year and number.

A reference is read leniently (spaces around it and lower case are accepted) and kept as it
was given otherwise: the record's id is derived from the text (capa.domain.record.record_uuid),
so `NC-2026-00042` is a different reference from `NC-2026-0042`, not the same one re-padded.
New references are numbered with at least four digits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from capa.domain.errors import InvalidInput

__all__ = ["PREFIXES", "RecordRef", "has_prefix", "is_ref", "sort_key"]

#: The kinds of record with a numbered reference: nonconformities and corrective actions.
PREFIXES = ("NC", "CA")
_PATTERN = re.compile(r"^(NC|CA)-(\d{4})-(\d{4,})$")
#: Numbers per year in the sort key: numeric order, which text order breaks past 9999.
_PER_YEAR = 10_000_000


@dataclass(frozen=True)
class RecordRef:
    """An NC's or CA's reference. `digits` is how many digits its number was written with."""

    prefix: str
    year: int
    number: int
    digits: int = 4

    @classmethod
    def parse(cls, text: str, prefix: str | None = None) -> RecordRef:
        """Read a reference, of the kind `prefix` when given; InvalidInput when `text` is not
        one (the message names the form expected)."""
        match = _PATTERN.match(text.strip().upper())
        if not match or (prefix is not None and match.group(1) != prefix):
            expected = f"{prefix}-YYYY-NNNN" if prefix else "NC-YYYY-NNNN or CA-YYYY-NNNN"
            raise InvalidInput(f"{text!r} is not a record id (expected {expected})")
        kind, year, number = match.groups()
        return cls(kind, int(year), int(number), len(number))

    @classmethod
    def new(cls, prefix: str, year: int, number: int) -> RecordRef:
        """The reference of a new record: its number written with at least four digits."""
        return cls(prefix, year, number, max(4, len(str(number))))

    def __str__(self) -> str:
        return f"{self.prefix}-{self.year:04d}-{self.number:0{self.digits}d}"

    @property
    def sort_key(self) -> int:
        """NC-2026-0042 → 20260000042: the order of year, then number."""
        return self.year * _PER_YEAR + self.number


def sort_key(ref: str) -> int:
    """`RecordRef.parse(ref).sort_key` for a reference capa wrote (read tables sort millions
    of them): the year and number as the text holds them, without a full parse."""
    _, year, number = ref.split("-")
    return int(year) * _PER_YEAR + int(number)


def is_ref(text: str) -> bool:
    """Whether `text` is an NC's or CA's reference (read leniently, as `RecordRef.parse`)."""
    return _PATTERN.match(text.strip().upper()) is not None


def has_prefix(text: str, prefix: str) -> bool:
    """Whether `text` reads as a reference of kind `prefix` at first sight (`NC-…`), before it
    is parsed: for entry points that route an id to the right kind of record."""
    return text.strip().upper().startswith(prefix + "-")
