"""The record of the audit-trail reviews (EU GMP Annex 11 §9): who reviewed which period, what
they were shown, and their signature.

There is one such record per store (`AUDIT-TRAIL`), created by the first review. A review is two
events saved together: `ReviewRecorded` keeps the period, the number of exceptions listed per
category and the SHA-256 of the exceptions exactly as they were listed; `ReviewSigned` then
carries the reviewer's signature (meaning `review`), which binds the record's content as it
stands after `ReviewRecorded` (R9), so that the digest and the counts cannot be changed
afterwards without breaking the signature.
"""

from __future__ import annotations

import re
from typing import Any

from eventsourcing.domain import event

from capa.domain.errors import InvalidInput, RuleViolation
from capa.domain.parts import Signature
from capa.domain.record import Record

__all__ = ["TRAIL_REVIEW_REF", "AuditTrailReviews", "is_trail_review_ref"]

#: The reference of the one record that holds a store's audit-trail reviews.
TRAIL_REVIEW_REF = "AUDIT-TRAIL"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def is_trail_review_ref(text: str) -> bool:
    """Whether `text` names the record of the audit-trail reviews (any letter case)."""
    return text.strip().upper() == TRAIL_REVIEW_REF


class AuditTrailReviews(Record):
    """Every audit-trail review of the store, oldest first."""

    @event("Started")
    def __init__(self, ref: str) -> None:
        self.ref = ref
        self.status = "active"
        self.reviews: list[dict[str, Any]] = []

    def record_review(self, *, start: str, end: str, counts: dict[str, int],
                      exceptions_sha256: str) -> None:
        """Record what a review of the period from `start` to `end` (ISO dates) was shown: the
        number of exceptions per category and the SHA-256 of the exceptions listed."""
        if not (start and end) or end < start:
            raise InvalidInput(f"a review period runs forwards (got {start} to {end})")
        if not _SHA256.match(exceptions_sha256):
            raise InvalidInput("the digest of the exceptions must be a SHA-256 in hex")
        if any(not isinstance(n, int) or isinstance(n, bool) or n < 0 for n in counts.values()):
            raise InvalidInput("the counts of a review must be whole numbers, 0 or more")
        if self.reviews and self.reviews[-1]["signature"] is None:
            raise RuleViolation("R7", "the last review recorded is not signed yet")
        self._review_recorded(start=start, end=end, counts=dict(counts),
                              exceptions_sha256=exceptions_sha256)

    @event("ReviewRecorded")
    def _review_recorded(self, start: str, end: str, counts: dict[str, int],
                         exceptions_sha256: str) -> None:
        self.reviews.append({"number": len(self.reviews) + 1, "from": start, "to": end,
                             "counts": counts, "exceptions": sum(counts.values()),
                             "exceptions_sha256": exceptions_sha256, "by": self.event_actor,
                             "at": self.event_time, "signature": None})

    def sign(self, signature: Signature) -> None:
        """The reviewer's signature (meaning review) on the review just recorded."""
        if not self.reviews or self.reviews[-1]["signature"] is not None:
            raise RuleViolation("R7", "there is no recorded review waiting for a signature")
        if signature.get("meaning") != "review":
            raise RuleViolation("R9", "an audit-trail review is signed with the meaning review")
        if signature.get("user_id") != self.reviews[-1]["by"]:
            raise RuleViolation("R9", "a review is signed by the reviewer who recorded it")
        self._review_signed(signature=signature)

    @event("ReviewSigned")
    def _review_signed(self, signature: Signature) -> None:
        self.reviews[-1]["signature"] = {**signature, "signed_at": self.event_time}

    @property
    def last_signed(self) -> dict[str, Any] | None:
        """The latest review that carries its signature."""
        return next((r for r in reversed(self.reviews) if r["signature"] is not None), None)
