"""Planned effectiveness checks, inconclusive outcomes and impact assessments (R11) of the
corrective action aggregate (SPEC §12): every transition and guard, no I/O."""

from __future__ import annotations

import pytest

from capa.domain.corrective_action import CorrectiveAction
from capa.domain.errors import InvalidInput, RuleViolation
from tests.unit.test_corrective_action import (
    OWNER,
    QUALITY,
    STATES,
    TECHNICIAN,
    VERIFIER,
    act,
    acting_quality,
    approved,
    assert_refused,
    event_names,
    implemented,
    investigated,
    others,
    sign,
    verified,
)

__all__ = ["acting_quality"]

CRITERIA = "No cracked housings in 3 consecutive lots"


def checked(start: str = "approved", due: str = "2026-09-01") -> CorrectiveAction:
    ca = STATES[start]()
    act(OWNER)
    ca.plan_check(CRITERIA, due, "100% visual inspection", today="2026-05-01")
    ca.collect_events()
    return ca


def test_a_check_is_planned_for_the_current_iteration() -> None:
    ca = approved()
    act(OWNER)
    ca.plan_check(CRITERIA, "2026-09-01", "100% visual inspection", today="2026-05-01")
    assert event_names(ca) == ["EffectivenessCheckPlanned"]
    assert ca.current_check is not None
    assert {k: ca.current_check[k] for k in ("iteration", "criteria", "method", "due", "state",
                                             "planned_by", "extensions")} == {
        "iteration": 1, "criteria": CRITERIA, "method": "100% visual inspection",
        "due": "2026-09-01", "state": "planned", "planned_by": OWNER, "extensions": []}
    assert ca.status == "approved"


def test_a_record_without_a_check_has_no_checks_field() -> None:
    """Records of earlier releases fold to exactly the state their signatures bound."""
    ca = verified()
    assert "checks" not in ca.fields() and "impacts" not in ca.fields()
    assert ca.checks == [] and ca.current_check is None


@pytest.mark.parametrize("start", ["open", "investigated", "planned", "approved",
                                   "implemented"])
def test_a_check_may_be_planned_until_the_verdict(start: str) -> None:
    assert checked(start).current_check is not None


@pytest.mark.parametrize("start", ["verified", "closed", "cancelled"])
def test_no_check_is_planned_after_the_verdict(start: str) -> None:
    ca = STATES[start]()
    assert_refused(ca, lambda: ca.plan_check(CRITERIA, "2026-09-01"), RuleViolation, "R7")


def test_a_check_due_in_the_past_is_refused() -> None:
    ca = approved()
    assert_refused(ca, lambda: ca.plan_check(CRITERIA, "2026-04-30", today="2026-05-01"),
                   RuleViolation, "R5")


@pytest.mark.parametrize(("criteria", "method"), [("", None), ("   ", None),
                                                  (CRITERIA, "two\nlines")])
def test_a_check_needs_criteria_and_a_one_line_method(criteria: str, method: str | None) -> None:
    ca = approved()
    assert_refused(ca, lambda: ca.plan_check(criteria, "2026-09-01", method), InvalidInput)


def test_replacing_a_check_needs_a_reason_and_keeps_the_first() -> None:
    ca = checked()
    assert_refused(ca, lambda: ca.plan_check("Fewer cracks", "2026-10-01"), RuleViolation, "R6")
    ca.plan_check("Zero cracks in 5 lots", "2026-10-01", reason="Customer asked for 5 lots")
    assert [(c["criteria"], c["state"]) for c in ca.checks] == [
        (CRITERIA, "replaced"), ("Zero cracks in 5 lots", "planned")]
    assert ca.current_check is not None and ca.current_check["reason"] == \
        "Customer asked for 5 lots"


@pytest.mark.parametrize(("effective", "state"), [(True, "effective"),
                                                  (False, "not-effective")])
def test_the_verdict_answers_the_planned_check(effective: bool, state: str) -> None:
    ca = checked("implemented")
    act(VERIFIER)
    ca.verify(effective, "Checked", [], sign(ca, VERIFIER, "verification"))
    assert ca.checks[0]["state"] == state
    assert ca.verifications[-1]["criteria"] == CRITERIA


def test_a_new_iteration_has_no_check_until_one_is_planned() -> None:
    ca = checked("implemented")
    act(VERIFIER)
    ca.verify(False, "Recurred", [], sign(ca, VERIFIER, "verification"))
    assert ca.iteration == 2 and ca.current_check is None
    act(OWNER)
    ca.plan_check("No cracks in 5 lots", "2026-10-01")  # no reason: a new iteration's check
    assert [c["iteration"] for c in ca.checks] == [1, 2]


def test_an_inconclusive_check_is_extended_and_the_ca_stays_implemented() -> None:
    ca = checked("implemented")
    act(VERIFIER)
    ca.inconclusive("One lot so far", [], sign(ca, VERIFIER, "verification"), "2026-11-01",
                    "Production paused")
    assert event_names(ca) == ["EffectivenessInconclusive"]
    assert ca.status == "implemented" and ca.verifications == []
    check = ca.current_check
    assert check is not None and check["due"] == "2026-11-01" and check["state"] == "planned"
    [extension] = check["extensions"]
    assert (extension["from"], extension["to"], extension["reason"], extension["note"]) == (
        "2026-09-01", "2026-11-01", "Production paused", "One lot so far")
    assert extension["signature"]["user_id"] == VERIFIER


def test_inconclusive_needs_a_planned_check() -> None:
    ca = implemented()
    act(VERIFIER)
    assert_refused(ca, lambda: ca.inconclusive("x", [], sign(ca, VERIFIER), "2026-11-01", "y"),
                   RuleViolation, "R7")


@pytest.mark.parametrize(("due", "reason"), [("2026-09-01", "paused"), ("2026-08-01", "paused"),
                                             ("2026-11-01", " ")])
def test_inconclusive_needs_a_later_date_and_a_reason(due: str, reason: str) -> None:
    ca = checked("implemented")
    act(VERIFIER)
    assert_refused(ca, lambda: ca.inconclusive("x", [], sign(ca, VERIFIER), due, reason),
                   RuleViolation, "R5")


@pytest.mark.parametrize("verifier", [OWNER, TECHNICIAN])
def test_r3_who_implemented_cannot_call_the_check_inconclusive(verifier: str) -> None:
    ca = checked("implemented")
    act(verifier)
    assert_refused(ca, lambda: ca.inconclusive("x", [], sign(ca, verifier), "2026-11-01", "y"),
                   RuleViolation, "R3")


@pytest.mark.parametrize("start", others("implemented"))
def test_inconclusive_only_while_implemented(start: str) -> None:
    ca = STATES[start]()
    act(VERIFIER)
    assert_refused(ca, lambda: ca.inconclusive("x", [], sign(ca, VERIFIER), "2027-11-01", "y"),
                   RuleViolation, "R7")


# -- R11 ---------------------------------------------------------------------------------------


def test_an_impact_assessment_is_kept_with_its_references() -> None:
    ca = verified()
    act(OWNER)
    ca.assess_impact("No effect on the validated process", " RMF-017 ",
                     ["DCO-1", "", "DCO-1", "WI-8"], ["TR-2"])
    assert event_names(ca) == ["ImpactAssessed"]
    impact = ca.current_impact
    assert impact is not None
    assert (impact["risk_file"], impact["changes"], impact["training"], impact["by"]) == (
        "RMF-017", ["DCO-1", "WI-8"], ["TR-2"], OWNER)


@pytest.mark.parametrize("start", ["open", "closed", "cancelled"])
def test_impact_is_assessed_once_there_is_something_to_assess(start: str) -> None:
    ca = STATES[start]()
    assert_refused(ca, lambda: ca.assess_impact("ok"), RuleViolation, "R7")


@pytest.mark.parametrize(("statement", "risk_file"), [("", None), ("ok", "two\nlines")])
def test_impact_needs_a_statement_and_one_line_references(statement: str,
                                                          risk_file: str | None) -> None:
    ca = investigated()
    assert_refused(ca, lambda: ca.assess_impact(statement, risk_file), InvalidInput)


def test_r11_closing_needs_this_iterations_impact_assessment_when_required() -> None:
    ca = verified()
    act(QUALITY)
    assert_refused(ca, lambda: ca.close(sign(ca, QUALITY), [], impact_required=True),
                   RuleViolation, "R11")
    act(OWNER)
    ca.assess_impact("No adverse effect")
    act(QUALITY)
    ca.close(sign(ca, QUALITY), [], impact_required=True)
    assert ca.status == "closed"


def test_r11_does_not_apply_unless_required() -> None:
    ca = verified()
    act(QUALITY)
    ca.close(sign(ca, QUALITY), [])
    assert ca.status == "closed"


def test_r11_an_earlier_iterations_assessment_does_not_count() -> None:
    ca = implemented()
    act(OWNER)
    ca.assess_impact("First actions are harmless")
    act(VERIFIER)
    ca.verify(False, "Recurred", [], sign(ca, VERIFIER, "verification"))
    assert ca.current_impact is None and len(ca.impacts) == 1


def test_r4_is_still_checked_before_r11() -> None:
    ca = implemented()
    act(QUALITY)
    assert_refused(ca, lambda: ca.close(sign(ca, QUALITY), [], impact_required=True),
                   RuleViolation, "R4")


def test_the_new_events_fold_back_to_the_same_state() -> None:
    """Replayed from its stored events, the record has the state its commands gave it (what
    snapshots, signatures' content digests and `audit verify` rely on)."""
    from eventsourcing.application import Application


    act(QUALITY)
    ca = CorrectiveAction.open_new(ref="CA-2026-0009", title="Cracks", problem="Cracks at B2",
                                   owner=OWNER, linked_ncs=[])
    act(OWNER)
    ca.investigate("ishikawa", "Worn gate", "machine")
    ca.plan("Replace gate", TECHNICIAN, "2026-05-15", "corrective")
    ca.plan_check(CRITERIA, "2026-09-01", "visual")
    ca.plan_check("Zero cracks in 5 lots", "2026-09-15", reason="Customer asked")
    act(QUALITY)
    ca.approve(sign(ca, QUALITY))
    act(TECHNICIAN)
    ca.complete("A1", "Done", [])
    act(VERIFIER)
    ca.inconclusive("One lot", [], sign(ca, VERIFIER, "verification"), "2026-10-01", "Paused")
    ca.verify(True, "Clean", [], sign(ca, VERIFIER, "verification"))
    act(OWNER)
    ca.assess_impact("No adverse effect", "RMF-1", ["DCO-1"], ["TR-1"])
    act(QUALITY)
    ca.close(sign(ca, QUALITY), [], impact_required=True)
    app: Application = Application()
    app.save(ca)
    folded = app.repository.get(ca.id)
    assert folded.fields() == ca.fields()
    assert folded.content_digest() == ca.content_digest()
