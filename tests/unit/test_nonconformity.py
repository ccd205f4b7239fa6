"""The nonconformity aggregate: every transition and guard of SPEC §1.1, no I/O."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from capa.domain.errors import InvalidInput, RuleViolation
from capa.domain.nonconformity import Nonconformity
from capa.domain.record import actor_id

REPORTER = "tokafor"
QUALITY = "mhernandez"


@pytest.fixture(autouse=True)
def acting_reporter() -> Iterator[None]:
    token = actor_id.set(REPORTER)
    yield
    actor_id.reset(token)


def act(user: str) -> None:
    actor_id.set(user)


def raised(ref: str = "NC-2026-0001", **overrides: Any) -> Nonconformity:
    fields: dict[str, Any] = {
        "ref": ref,
        "title": "Cracked housing",
        "description": "Hairline crack at screw boss B2",
        "source": "customer-complaint",
        "severity": "major",
        "detected_on": "2026-03-02",
        "reported_by": REPORTER,
        "product": "IP-200 housing",
        "lot": "L2311",
        "external_ref": "COMP-2026-0142",
    }
    fields.update(overrides)
    nc = Nonconformity.raise_new(**fields)
    nc.collect_events()
    return nc


def contained() -> Nonconformity:
    nc = raised()
    nc.contain("Lot L2311 quarantined", "quarantine")
    nc.collect_events()
    return nc


def assessed(capa_required: bool = True) -> Nonconformity:
    nc = raised()
    act(QUALITY)
    nc.assess(4, 3, capa_required, None if capa_required else "Isolated slip, caught in-house")
    nc.collect_events()
    return nc


def linked() -> Nonconformity:
    nc = assessed(capa_required=True)
    nc.link("CA-2026-0001")
    nc.collect_events()
    return nc


def signature(nc: Nonconformity, user: str = QUALITY) -> dict[str, Any]:
    return {"user_id": user, "full_name": "Maria Hernandez", "meaning": "approval",
            "content_sha256": nc.content_digest(), "signed_version": nc.version}


def closed() -> Nonconformity:
    nc = assessed(capa_required=False)
    nc.close(signature(nc))
    nc.collect_events()
    return nc


def cancelled() -> Nonconformity:
    nc = raised()
    nc.cancel("Duplicate of NC-2026-0003")
    nc.collect_events()
    return nc


STATES: dict[str, Callable[[], Nonconformity]] = {
    "open": raised, "contained": contained, "assessed": assessed, "linked": linked,
    "closed": closed, "cancelled": cancelled,
}


def assert_refused(nc: Nonconformity, command: Callable[[], Any], error: type[Exception],
                   rule: str | None = None) -> Exception:
    """The command raises the error (naming the rule) and leaves the record untouched."""
    nc.collect_events()
    version, state = nc.version, nc.fields()
    with pytest.raises(error) as refused:
        command()
    if rule is not None:
        assert getattr(refused.value, "rule", None) == rule
        assert f"({rule})" in str(refused.value)
    assert nc.collect_events() == []
    assert nc.version == version
    assert nc.fields() == state
    return refused.value


def only_event(nc: Nonconformity) -> Any:
    events = nc.collect_events()
    assert len(events) == 1
    return events[0]


# -- raise -----------------------------------------------------------------------------------


def test_raise_opens_the_record_with_every_field() -> None:
    nc = Nonconformity.raise_new(
        ref="NC-2026-0007", title="  Seal strength low ", description="12 of 50 below 8 N",
        source="process", severity="critical", detected_on="2026-03-01", reported_by=REPORTER,
        product=" Pouch P-10 ", lot="", external_ref=None,
    )
    assert nc.ref == "NC-2026-0007"
    assert nc.status == "open"
    assert nc.version == 1
    assert nc.title == "Seal strength low"
    assert nc.source == "process"
    assert nc.severity == "critical"
    assert nc.product == "Pouch P-10"
    assert nc.lot is None
    assert nc.external_ref is None
    assert nc.detected_on == "2026-03-01"
    assert nc.reported_by == REPORTER
    assert nc.containment == []
    assert nc.assessment is None
    assert nc.linked_cas == []
    event = only_event(nc)
    assert type(event).__name__ == "Raised"
    assert event.actor == REPORTER


@pytest.mark.parametrize(
    ("field", "value"),
    [("title", ""), ("title", "   "), ("description", ""), ("source", "gossip"),
     ("source", "Process"), ("severity", "huge"), ("severity", ""),
     ("title", "\u200b"), ("title", " \u200b\u2060 "), ("description", "\u200b\n"),
     ("title", "Cracked\nhousing"), ("title", "Cracked\thousing"), ("title", "x" * 1001),
     ("description", "y" * 20_001), ("product", "P\n10"), ("lot", "L" * 1001),
     ("external_ref", "C-1\x07")],
)
def test_raise_refuses_invalid_fields(field: str, value: str) -> None:
    with pytest.raises(InvalidInput, match=field):
        raised(**{field: value})


def test_text_with_accents_marks_and_emoji_sequences_is_kept_as_written() -> None:
    title = ("Sch\u00e4den am Geh\u00e4use \u2014 \u05e9\u05dc\u05d5\u05dd\u200f "
             "\U0001f468\u200d\U0001f527")
    nc = raised(title=title, product="x" * 1000)
    assert nc.title == title and len(nc.product or "") == 1000


def test_every_event_records_who_and_when_in_utc() -> None:
    """R8: attributable and contemporaneous."""
    nc = Nonconformity.raise_new(
        ref="NC-2026-0001", title="t", description="d", source="other", severity="minor",
        detected_on="2026-03-01", reported_by=REPORTER)
    act(QUALITY)
    nc.contain("Held at receiving", "quarantine")
    nc.assess(1, 1, False, "Cosmetic only")
    events = nc.collect_events()
    assert [e.actor for e in events] == [REPORTER, QUALITY, QUALITY]
    for event in events:
        assert event.timestamp.utcoffset() == dt.timedelta(0)
    assert nc.containment[0]["by"] == QUALITY
    assert nc.containment[0]["at"].endswith("Z")
    assert nc.assessment is not None and nc.assessment["at"].endswith("Z")


# -- contain ---------------------------------------------------------------------------------


@pytest.mark.parametrize("start", ["open", "contained"])
def test_contain_from_open_or_contained(start: str) -> None:
    nc = STATES[start]()
    before = len(nc.containment)
    nc.contain("Line 3 stopped", "rework")
    event = only_event(nc)
    assert type(event).__name__ == "Contained"
    assert nc.status == "contained"
    assert len(nc.containment) == before + 1
    assert nc.containment[-1]["action"] == "Line 3 stopped"
    assert nc.containment[-1]["disposition"] == "rework"


def test_contain_disposition_defaults_to_none() -> None:
    nc = raised()
    nc.contain("Notified the customer")
    assert nc.containment[-1]["disposition"] == "none"


@pytest.mark.parametrize("start", ["assessed", "linked", "closed", "cancelled"])
def test_contain_refused_in_other_states(start: str) -> None:
    nc = STATES[start]()
    assert_refused(nc, lambda: nc.contain("Too late", "scrap"), RuleViolation, "R7")


def test_contain_needs_an_action_and_a_valid_disposition() -> None:
    nc = raised()
    assert_refused(nc, lambda: nc.contain("  ", "scrap"), InvalidInput)
    error = assert_refused(nc, lambda: nc.contain("Held", "burn"), InvalidInput)
    assert "quarantine" in str(error)


# -- assess ----------------------------------------------------------------------------------


@pytest.mark.parametrize("start", ["open", "contained"])
def test_assess_with_capa_required(start: str) -> None:
    nc = STATES[start]()
    nc.assess(4, 3, True)
    event = only_event(nc)
    assert type(event).__name__ == "Assessed"
    assert nc.status == "assessed"
    assert nc.capa_required is True
    assert nc.assessment is not None
    assert nc.assessment["risk"] == 12
    assert nc.assessment["risk_level"] == "high"
    assert nc.assessment["rationale"] is None


@pytest.mark.parametrize(
    ("impact", "likelihood", "risk", "level"),
    [(1, 1, 1, "low"), (2, 2, 4, "low"), (5, 1, 5, "medium"), (3, 3, 9, "medium"),
     (2, 5, 10, "high"), (4, 4, 16, "high"), (4, 5, 20, "critical"), (5, 5, 25, "critical")],
)
def test_assess_computes_risk_and_level(impact: int, likelihood: int, risk: int,
                                        level: str) -> None:
    nc = raised()
    nc.assess(impact, likelihood, True)
    assert nc.assessment is not None
    assert (nc.assessment["impact"], nc.assessment["likelihood"]) == (impact, likelihood)
    assert nc.assessment["risk"] == risk
    assert nc.assessment["risk_level"] == level


@pytest.mark.parametrize(("impact", "likelihood"), [(0, 3), (6, 3), (3, 0), (3, 6), (-1, 1)])
def test_assess_refuses_scores_outside_1_to_5(impact: int, likelihood: int) -> None:
    nc = raised()
    assert_refused(nc, lambda: nc.assess(impact, likelihood, True), InvalidInput)


@pytest.mark.parametrize("rationale", [None, "", "   "])
def test_no_capa_required_needs_a_rationale(rationale: str | None) -> None:
    """R1."""
    nc = raised()
    assert_refused(nc, lambda: nc.assess(2, 1, False, rationale), RuleViolation, "R1")


def test_no_capa_required_with_rationale_is_recorded() -> None:
    nc = contained()
    nc.assess(2, 1, False, "  Isolated labelling slip ")
    assert nc.status == "assessed"
    assert nc.capa_required is False
    assert nc.assessment is not None
    assert nc.assessment["rationale"] == "Isolated labelling slip"


@pytest.mark.parametrize("start", ["assessed", "linked", "closed", "cancelled"])
def test_assess_refused_in_other_states(start: str) -> None:
    nc = STATES[start]()
    assert_refused(nc, lambda: nc.assess(2, 2, True), RuleViolation, "R7")


# -- link and close --------------------------------------------------------------------------


def test_link_an_assessed_nc_needing_a_ca() -> None:
    nc = assessed(capa_required=True)
    nc.link("CA-2026-0004")
    event = only_event(nc)
    assert type(event).__name__ == "LinkedToCorrectiveAction"
    assert nc.status == "linked"
    assert nc.linked_cas == ["CA-2026-0004"]


def test_link_refused_when_no_ca_was_required() -> None:
    nc = assessed(capa_required=False)
    assert_refused(nc, lambda: nc.link("CA-2026-0001"), RuleViolation, "R7")


@pytest.mark.parametrize("start", ["open", "contained", "linked", "closed", "cancelled"])
def test_link_refused_unless_assessed(start: str) -> None:
    nc = STATES[start]()
    assert_refused(nc, lambda: nc.link("CA-2026-0002"), RuleViolation, "R7")


def test_close_without_ca_is_signed() -> None:
    nc = assessed(capa_required=False)
    sig = signature(nc)
    nc.close(sig)
    event = only_event(nc)
    assert type(event).__name__ == "Closed"
    assert nc.status == "closed"
    assert nc.closure is not None
    assert nc.closure["with_ca"] is None
    assert nc.closure["by"] == QUALITY
    stored = nc.closure["signature"]
    assert stored["meaning"] == "approval"
    assert stored["content_sha256"] == sig["content_sha256"]
    assert stored["signed_at"].endswith("Z")


def test_close_refused_when_a_ca_is_required() -> None:
    """R4: an NC needing a CA closes only with it."""
    nc = assessed(capa_required=True)
    assert_refused(nc, lambda: nc.close(signature(nc)), RuleViolation, "R4")


def test_close_refused_when_linked() -> None:
    """R4: a linked NC closes with its CA, not on its own."""
    nc = linked()
    error = assert_refused(nc, lambda: nc.close(signature(nc)), RuleViolation, "R4")
    assert "CA-2026-0001" in str(error)


@pytest.mark.parametrize("start", ["open", "contained", "closed", "cancelled"])
def test_close_refused_unless_assessed(start: str) -> None:
    nc = STATES[start]()
    assert_refused(nc, lambda: nc.close(signature(nc)), RuleViolation, "R7")


def test_close_with_its_ca() -> None:
    nc = linked()
    nc.close_with("CA-2026-0001")
    event = only_event(nc)
    assert type(event).__name__ == "ClosedWithCorrectiveAction"
    assert nc.status == "closed"
    assert nc.closure is not None
    assert nc.closure["with_ca"] == "CA-2026-0001"
    assert nc.closure["signature"] is None


@pytest.mark.parametrize("start", ["open", "contained", "assessed", "closed", "cancelled"])
def test_close_with_ca_refused_unless_linked(start: str) -> None:
    nc = STATES[start]()
    assert_refused(nc, lambda: nc.close_with("CA-2026-0001"), RuleViolation, "R7")


# -- cancel, reopen, amend -------------------------------------------------------------------


@pytest.mark.parametrize("start", ["open", "contained", "assessed", "linked"])
def test_cancel_any_active_nc(start: str) -> None:
    nc = STATES[start]()
    nc.cancel("Raised in error")
    event = only_event(nc)
    assert type(event).__name__ == "Cancelled"
    assert event.reason == "Raised in error"
    assert nc.status == "cancelled"
    assert nc.cancellation is not None
    assert nc.cancellation["reason"] == "Raised in error"


@pytest.mark.parametrize("reason", ["", "   "])
def test_cancel_needs_a_reason(reason: str) -> None:
    """R6."""
    nc = raised()
    assert_refused(nc, lambda: nc.cancel(reason), RuleViolation, "R6")


@pytest.mark.parametrize("start", ["closed", "cancelled"])
def test_cancel_refused_when_closed_or_cancelled(start: str) -> None:
    nc = STATES[start]()
    assert_refused(nc, lambda: nc.cancel("again"), RuleViolation, "R7")


@pytest.mark.parametrize("start", ["closed", "cancelled"])
def test_reopen_returns_to_open_keeping_history(start: str) -> None:
    nc = STATES[start]()
    version = nc.version
    nc.reopen("Same defect found in lot L2411")
    event = only_event(nc)
    assert type(event).__name__ == "Reopened"
    assert event.reason == "Same defect found in lot L2411"
    assert nc.status == "open"
    assert nc.version == version + 1
    assert nc.closure is None and nc.cancellation is None
    assert nc.assessment is None
    nc.assess(3, 3, True)
    assert nc.status == "assessed"


@pytest.mark.parametrize("start", ["open", "contained", "assessed", "linked"])
def test_reopen_refused_unless_closed_or_cancelled(start: str) -> None:
    nc = STATES[start]()
    assert_refused(nc, lambda: nc.reopen("why not"), RuleViolation, "R7")


def test_reopen_needs_a_reason() -> None:
    """R6."""
    nc = closed()
    assert_refused(nc, lambda: nc.reopen(" "), RuleViolation, "R6")


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [("title", "Cracked housing at boss B2", "Cracked housing at boss B2"),
     ("description", "Crack seen under 10x", "Crack seen under 10x"),
     ("product", "IP-300 housing", "IP-300 housing"),
     ("product", "  ", None),
     ("lot", "L2312", "L2312"),
     ("severity", "critical", "critical"),
     ("source", "supplier", "supplier"),
     ("external_ref", "COMP-2026-0150", "COMP-2026-0150")],
)
def test_amend_keeps_the_old_value_and_the_reason(field: str, value: str,
                                                  expected: str | None) -> None:
    """R6: every correction states a reason; the old value stays visible."""
    nc = contained()
    old = getattr(nc, field)
    nc.amend(field, value, "Complaint follow-up")
    event = only_event(nc)
    assert type(event).__name__ == "Amended"
    assert (event.field, event.old, event.new, event.reason) == (
        field, old, expected, "Complaint follow-up")
    assert getattr(nc, field) == expected
    assert nc.status == "contained"


@pytest.mark.parametrize("reason", ["", "  "])
def test_amend_needs_a_reason(reason: str) -> None:
    """R6."""
    nc = raised()
    assert_refused(nc, lambda: nc.amend("severity", "critical", reason), RuleViolation, "R6")


@pytest.mark.parametrize(
    ("field", "value"),
    [("status", "closed"), ("reported_by", "someone"), ("detected_on", "01/02/2026"),
     ("detected_on", "2999-01-01"), ("detected_on", ""),
     ("severity", "huge"), ("source", "rumour"), ("title", "  "),
     ("severity", "major")],  # unchanged value: nothing to correct
)
def test_amend_refuses_unknown_fields_and_invalid_values(field: str, value: str) -> None:
    nc = raised()
    assert_refused(nc, lambda: nc.amend(field, value, "typo"), InvalidInput)


def test_amending_an_empty_field_to_empty_says_so_in_words() -> None:
    nc = raised(product=None)
    error = assert_refused(nc, lambda: nc.amend("product", "", "typo"), InvalidInput)
    assert str(error) == "product of NC-2026-0001 is already empty"


@pytest.mark.parametrize("start", ["closed", "cancelled"])
def test_amend_refused_when_closed_or_cancelled(start: str) -> None:
    nc = STATES[start]()
    assert_refused(nc, lambda: nc.amend("title", "New title", "typo"), RuleViolation, "R7")


# -- content digest (signature binding, R9) --------------------------------------------------


def test_content_digest_is_stable_for_equal_content() -> None:
    first, second = raised(), raised()
    assert first is not second
    assert first.content_digest() == second.content_digest()
    assert first.content_digest() == first.content_digest()
    assert len(first.content_digest()) == 64
    int(first.content_digest(), 16)


@pytest.mark.parametrize(
    "overrides",
    [{"ref": "NC-2026-0002"}, {"title": "Cracked housing!"}, {"severity": "critical"},
     {"lot": None}, {"description": "Hairline crack at screw boss B3"}],
)
def test_content_digest_differs_when_content_differs(overrides: dict[str, Any]) -> None:
    assert raised(**overrides).content_digest() != raised().content_digest()


def test_content_digest_changes_with_every_event() -> None:
    nc = raised()
    seen = {nc.content_digest()}
    nc.contain("Held", "quarantine")
    seen.add(nc.content_digest())
    nc.amend("lot", "L2399", "Wrong lot recorded")
    seen.add(nc.content_digest())
    assert len(seen) == 3


def test_a_signature_binds_the_content_that_was_signed() -> None:
    nc = assessed(capa_required=False)
    before = nc.content_digest()
    nc.close(signature(nc))
    assert nc.closure is not None
    assert nc.closure["signature"]["content_sha256"] == before
    assert nc.content_digest() != before
