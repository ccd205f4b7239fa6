"""Reviews of the quality system's records: the audit-trail review by exception (EU GMP
Annex 11 §9), listed or signed, and the management review pack (ISO 9001 9.3.2, ISO 13485
5.6.2). Both read the events, never the read tables.

Who may do what (capa.app.permissions): quality, admin and auditor list an audit-trail review;
only quality and admin sign one, because signing records an event and auditors never change the
store (SPEC §9.6). Quality, admin and auditor read the management review pack.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import Any

from capa.app.core import Core
from capa.app.operations import operation
from capa.app.signing import Signing
from capa.audit.trail_exceptions import (
    CATEGORIES,
    LATE_ENTRY_DAYS,
    exceptions_digest,
    trail_exceptions,
)
from capa.domain.errors import InvalidInput, NotFound
from capa.domain.record import record_uuid, utc_iso
from capa.domain.trail_review import TRAIL_REVIEW_REF, AuditTrailReviews
from capa.domain.values import SignatureMeaning, parse_date
from capa.reports.dashboard import MAX_MONTHS


class Reviews:
    """The audit-trail review and the management review pack of the core's store."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.signing = Signing(core)

    @operation("audit review")
    def trail_review(self, start: str, end: str) -> dict[str, Any]:
        """What a reviewer must look at in the audit trail recorded from `start` to `end`
        (ISO dates, both included), by category, with the SHA-256 of the exceptions listed."""
        first, last = review_period(start, end)
        return _listing(self.core, first, last)

    @operation("audit review --sign")
    def sign_trail_review(self, start: str, end: str) -> dict[str, Any]:
        """List the exceptions of the period, then record the review with the reviewer's
        signature (meaning review): the period, the counts per category and the digest of the
        exceptions listed, in one save."""
        first, last = review_period(start, end)
        if last > dt.datetime.now(dt.UTC).date():
            raise InvalidInput(f"--to {last} is in the future: a review signs a period that has "
                               "ended or ends today")
        listing = _listing(self.core, first, last)
        record = _reviews_record(self.core)
        record.record_review(start=listing["from"], end=listing["to"], counts=listing["counts"],
                             exceptions_sha256=listing["exceptions_sha256"])
        record.sign(self.signing.signature(record, SignatureMeaning.REVIEW))
        self.core.persist(record)
        return {"id": record.ref, "status": record.status, "version": record.version,
                **listing, "signature": record.reviews[-1]["signature"]}


    @operation("management-review")
    def management_review(self, start: str, end: str, fmt: str) -> bytes:
        """The management review pack of the period from `start` to `end` (ISO dates, both
        included) as Markdown, HTML or PDF, its figures folded from the events."""
        # Start-up time (SPEC §7 P1): the PDF library loads only for a pack or a report.
        from capa.reports.management_review import collect_review, review_report
        from capa.reports.render import render

        if fmt not in ("md", "html", "pdf"):
            raise InvalidInput(f"format must be one of: md, html, pdf (got {fmt!r})")
        first, last = review_period(start, end)
        months = (last.year - first.year) * 12 + last.month - first.month + 1
        if months > MAX_MONTHS:
            raise InvalidInput(f"the period spans {months} months; a management review covers "
                               f"at most {MAX_MONTHS}")
        core = self.core
        now = dt.datetime.now(dt.UTC)
        figures = collect_review(core, first, last, now.date())
        try:
            organisation = str(core.store_info().get("organisation") or "")
        except NotFound:
            organisation = ""
        report = review_report(figures, organisation, utc_iso(now), core.full_name)
        return render(report, fmt)


def review_period(start: str, end: str) -> tuple[dt.date, dt.date]:
    """The period from `start` to `end`, read by the one date parser; InvalidInput (exit 2)
    when either is not a date or the period runs backwards."""
    first, last = parse_date(start, "--from"), parse_date(end, "--to")
    if last < first:
        raise InvalidInput(f"--to {last} is before --from {first}; give a --to on or after "
                           "--from")
    return first, last


def _listing(core: Core, first: dt.date, last: dt.date) -> dict[str, Any]:
    items = trail_exceptions(core, first, last)
    counts = dict.fromkeys(CATEGORIES, 0)
    for item in items:
        counts[item.category] += 1
    return {"from": first.isoformat(), "to": last.isoformat(), "counts": counts,
            "total": len(items), "exceptions_sha256": exceptions_digest(items),
            "late_entry_days": LATE_ENTRY_DAYS, "exceptions": [asdict(i) for i in items]}


def _reviews_record(core: Core) -> AuditTrailReviews:
    try:
        return core.load(AuditTrailReviews, TRAIL_REVIEW_REF)
    except NotFound:
        return AuditTrailReviews(ref=TRAIL_REVIEW_REF)


def last_trail_review(core: Core) -> dict[str, Any] | None:
    """The latest signed audit-trail review (its period, the day it was signed and the printed
    name of its reviewer), from the events; None when the trail was never reviewed. For the
    operations that show it (the dashboard)."""
    if not core.recorder.select_events(record_uuid(TRAIL_REVIEW_REF), lte=1, limit=1):
        return None
    review = core.load(AuditTrailReviews, TRAIL_REVIEW_REF).last_signed
    if review is None:
        return None
    signature = review["signature"]
    return {"from": review["from"], "to": review["to"],
            "reviewed_on": str(signature["signed_at"])[:10], "user_id": signature["user_id"],
            "full_name": signature["full_name"], "exceptions": review["exceptions"]}
