"""The corrective action aggregate: every transition and guard of SPEC §1.2-1.3, no I/O."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from capa.domain.corrective_action import CorrectiveAction
from capa.domain.errors import InvalidInput, NotFound, RuleViolation
from capa.domain.record import actor_id

QUALITY = "mhernandez"
OWNER = "apatel"
TECHNICIAN = "lnguyen"
VERIFIER = "rkowalski"


@pytest.fixture(autouse=True)
def acting_quality() -> Iterator[None]:
    token = actor_id.set(QUALITY)
    yield
    actor_id.reset(token)


def act(user: str) -> None:
    actor_id.set(user)


def sign(ca: CorrectiveAction, user: str, meaning: str = "approval") -> dict[str, Any]:
    return {"user_id": user, "full_name": user.title(), "meaning": meaning,
            "content_sha256": ca.content_digest(), "signed_version": ca.version}


def opened(ref: str = "CA-2026-0001", **overrides: Any) -> CorrectiveAction:
    fields: dict[str, Any] = {"ref": ref, "title": "Housing cracks",
                              "problem": "Cracks at boss B2 within weeks", "owner": OWNER,
                              "linked_ncs": ["NC-2026-0001"]}
    fields.update(overrides)
    act(QUALITY)
    ca = CorrectiveAction.open_new(**fields)
    ca.collect_events()
    return ca


def investigated() -> CorrectiveAction:
    ca = opened()
    act(OWNER)
    ca.investigate("5-whys", "Worn gate insert", "machine", ["Boss cracks", "Thin wall"])
    ca.collect_events()
    return ca


def planned() -> CorrectiveAction:
    ca = investigated()
    act(OWNER)
    ca.plan("Sort and scrap lot L2311", TECHNICIAN, "2026-05-01", "correction")
    ca.plan("Replace gate insert", OWNER, "2026-05-15", "corrective")
    ca.collect_events()
    return ca


def approved() -> CorrectiveAction:
    ca = planned()
    act(QUALITY)
    ca.approve(sign(ca, QUALITY))
    ca.collect_events()
    return ca


def implemented() -> CorrectiveAction:
    ca = approved()
    act(TECHNICIAN)
    ca.complete("A1", "312 sorted, 27 scrapped", [])
    act(OWNER)
    ca.complete("A2", "Insert replaced", [])
    ca.collect_events()
    return ca


def verified() -> CorrectiveAction:
    ca = implemented()
    act(VERIFIER)
    ca.verify(True, "No cracks in 3 lots", [], sign(ca, VERIFIER, "verification"))
    ca.collect_events()
    return ca


def closed() -> CorrectiveAction:
    ca = verified()
    act(QUALITY)
    ca.close(sign(ca, QUALITY), ["NC-2026-0001"])
    ca.collect_events()
    return ca


def cancelled() -> CorrectiveAction:
    ca = investigated()
    act(QUALITY)
    ca.cancel("Merged into CA-2026-0002")
    ca.collect_events()
    return ca


STATES: dict[str, Callable[[], CorrectiveAction]] = {
    "open": opened, "investigated": investigated, "planned": planned, "approved": approved,
    "implemented": implemented, "verified": verified, "closed": closed, "cancelled": cancelled,
}
ACTIVE = ["open", "investigated", "planned", "approved", "implemented", "verified"]


def others(*allowed: str) -> list[str]:
    return [s for s in STATES if s not in allowed]


def assert_refused(ca: CorrectiveAction, command: Callable[[], Any], error: type[Exception],
                   rule: str | None = None) -> Exception:
    """The command raises the error (naming the rule) and leaves the record untouched."""
    ca.collect_events()
    version, state = ca.version, ca.fields()
    with pytest.raises(error) as refused:
        command()
    if rule is not None:
        assert getattr(refused.value, "rule", None) == rule
        assert f"({rule})" in str(refused.value)
    assert ca.collect_events() == []
    assert ca.version == version
    assert ca.fields() == state
    return refused.value


def event_names(ca: CorrectiveAction) -> list[str]:
    return [type(e).__name__ for e in ca.collect_events()]


# -- open ------------------------------------------------------------------------------------


def test_open_starts_at_iteration_one() -> None:
    act(QUALITY)
    ca = CorrectiveAction.open_new(ref="CA-2026-0003", title=" Housing cracks ",
                                   problem="Cracks", owner=OWNER, linked_ncs=["NC-2026-0001"])
    assert event_names(ca) == ["Opened"]
    assert (ca.ref, ca.status, ca.version, ca.iteration) == ("CA-2026-0003", "open", 1, 1)
    assert ca.title == "Housing cracks"
    assert ca.owner == OWNER
    assert ca.linked_ncs == ["NC-2026-0001"]
    assert ca.items == [] and ca.analyses == [] and ca.approvals == []
    assert ca.root_cause is None


@pytest.mark.parametrize("field", ["title", "problem", "owner"])
def test_open_refuses_blank_fields(field: str) -> None:
    with pytest.raises(InvalidInput):
        opened(**{field: "  "})


def test_link_nc_adds_once() -> None:
    ca = opened()
    ca.link_nc("NC-2026-0009")
    assert event_names(ca) == ["NonconformityLinked"]
    assert ca.linked_ncs == ["NC-2026-0001", "NC-2026-0009"]
    ca.link_nc("NC-2026-0009")
    assert ca.collect_events() == []


@pytest.mark.parametrize("start", ["closed", "cancelled"])
def test_link_nc_refused_when_closed_or_cancelled(start: str) -> None:
    ca = STATES[start]()
    assert_refused(ca, lambda: ca.link_nc("NC-2026-0009"), RuleViolation, "R7")


# -- investigate -----------------------------------------------------------------------------


@pytest.mark.parametrize("start", ["open", "investigated"])
def test_investigate_keeps_every_analysis_and_the_latest_is_current(start: str) -> None:
    ca = STATES[start]()
    count = len(ca.analyses)
    act(OWNER)
    ca.investigate("ishikawa", "Resin moisture above 0.02 %", "material")
    assert event_names(ca) == ["RootCauseAnalysed"]
    assert ca.status == "investigated"
    assert len(ca.analyses) == count + 1
    assert ca.root_cause is not None
    assert ca.root_cause["root_cause"] == "Resin moisture above 0.02 %"
    assert ca.root_cause["category"] == "material"
    assert ca.root_cause["by"] == OWNER
    assert ca.root_cause["iteration"] == 1


def test_five_whys_keeps_the_why_chain() -> None:
    ca = opened()
    ca.investigate("5-whys", "Worn insert", "machine", [" Cracks ", "", "Thin wall"])
    assert ca.analyses[0]["whys"] == ["Cracks", "Thin wall"]


@pytest.mark.parametrize("whys", [None, [], ["", "  "]])
def test_five_whys_needs_at_least_one_why(whys: list[str] | None) -> None:
    ca = opened()
    assert_refused(ca, lambda: ca.investigate("5-whys", "Worn insert", "machine", whys),
                   InvalidInput)


@pytest.mark.parametrize(
    ("method", "root_cause", "category"),
    [("guessing", "x", "machine"), ("ishikawa", "  ", "machine"), ("ishikawa", "x", "money")],
)
def test_investigate_refuses_invalid_input(method: str, root_cause: str, category: str) -> None:
    ca = opened()
    assert_refused(ca, lambda: ca.investigate(method, root_cause, category, ["why"]),
                   InvalidInput)


@pytest.mark.parametrize("start", others("open", "investigated"))
def test_investigate_refused_in_other_states(start: str) -> None:
    ca = STATES[start]()
    assert_refused(ca, lambda: ca.investigate("other", "x", "method"), RuleViolation, "R7")


# -- plan ------------------------------------------------------------------------------------


def test_plan_numbers_items_within_the_ca() -> None:
    ca = investigated()
    act(OWNER)
    assert ca.plan("Sort lot", TECHNICIAN, "2026-05-01", "correction") == "A1"
    assert ca.status == "planned"
    assert ca.plan("Add check", TECHNICIAN, "2026-05-02", "preventive") == "A2"
    assert event_names(ca) == ["ActionItemPlanned", "ActionItemPlanned"]
    first = ca.items[0]
    assert (first["number"], first["assignee"], first["due"], first["type"], first["state"]) == (
        "A1", TECHNICIAN, "2026-05-01", "correction", "open")
    assert first["iteration"] == 1
    assert first["extensions"] == [] and first["completed_by"] is None


@pytest.mark.parametrize(
    ("text", "assignee", "action_type"),
    [("  ", TECHNICIAN, "corrective"), ("Fix", " ", "corrective"), ("Fix", TECHNICIAN, "wish")],
)
def test_plan_refuses_invalid_input(text: str, assignee: str, action_type: str) -> None:
    ca = investigated()
    assert_refused(ca, lambda: ca.plan(text, assignee, "2026-05-01", action_type), InvalidInput)


@pytest.mark.parametrize("start", others("investigated", "planned", "approved"))
def test_plan_refused_in_other_states(start: str) -> None:
    ca = STATES[start]()
    assert_refused(ca, lambda: ca.plan("More", TECHNICIAN, "2026-05-01", "corrective"),
                   RuleViolation, "R7")


def test_planning_after_approval_voids_the_approval() -> None:
    ca = approved()
    assert [a["voided"] for a in ca.approvals] == [False]
    act(OWNER)
    assert ca.plan("Also retrain operators", TECHNICIAN, "2026-06-01", "preventive") == "A3"
    assert ca.status == "planned"
    assert [a["voided"] for a in ca.approvals] == [True]
    # The grown plan must be approved again before anything is completed.
    act(TECHNICIAN)
    assert_refused(ca, lambda: ca.complete("A1", "done", []), RuleViolation, "R7")
    act(QUALITY)
    ca.approve(sign(ca, QUALITY))
    assert ca.status == "approved"
    assert [a["voided"] for a in ca.approvals] == [True, False]


# -- approve ---------------------------------------------------------------------------------


def test_approve_records_the_signature() -> None:
    ca = planned()
    act(QUALITY)
    signature = sign(ca, QUALITY)
    ca.approve(signature)
    assert event_names(ca) == ["PlanApproved"]
    assert ca.status == "approved"
    stored = ca.approvals[-1]
    assert stored["iteration"] == 1 and stored["voided"] is False
    assert stored["signature"]["user_id"] == QUALITY
    assert stored["signature"]["meaning"] == "approval"
    assert stored["signature"]["content_sha256"] == signature["content_sha256"]
    assert stored["signature"]["signed_at"].endswith("Z")


def test_owner_cannot_approve_own_plan() -> None:
    """R2: separation of duties."""
    ca = planned()
    act(OWNER)
    error = assert_refused(ca, lambda: ca.approve(sign(ca, OWNER)), RuleViolation, "R2")
    assert OWNER in str(error)


@pytest.mark.parametrize("start", others("planned"))
def test_approve_refused_unless_planned(start: str) -> None:
    ca = STATES[start]()
    assert_refused(ca, lambda: ca.approve(sign(ca, QUALITY)), RuleViolation, "R7")


# -- complete and extend ---------------------------------------------------------------------


def test_completing_the_last_open_item_implements_the_ca() -> None:
    ca = approved()
    act(TECHNICIAN)
    ca.complete("a1", "312 sorted", [{"name": "log.csv", "size": 3, "media_type": "text/csv",
                                       "sha256": "0" * 64}])
    assert event_names(ca) == ["ActionItemCompleted"]
    assert ca.status == "approved"
    item = ca.item("A1")
    assert item["state"] == "done"
    assert item["note"] == "312 sorted"
    assert item["completed_by"] == TECHNICIAN
    assert item["completed_at"].endswith("Z")
    assert item["evidence"][0]["name"] == "log.csv"
    act(OWNER)
    ca.complete("A2", "Insert replaced", [])
    assert ca.status == "implemented"


def test_complete_refuses_a_second_completion() -> None:
    ca = approved()
    act(TECHNICIAN)
    ca.complete("A1", "done", [])
    assert_refused(ca, lambda: ca.complete("A1", "done again", []), RuleViolation, "R7")


def test_complete_needs_a_note_and_a_known_item() -> None:
    ca = approved()
    act(TECHNICIAN)
    assert_refused(ca, lambda: ca.complete("A1", "  ", []), InvalidInput)
    assert_refused(ca, lambda: ca.complete("A9", "done", []), NotFound)


@pytest.mark.parametrize("start", others("approved"))
def test_complete_refused_unless_approved(start: str) -> None:
    ca = STATES[start]()
    act(OWNER)
    assert_refused(ca, lambda: ca.complete("A1", "done", []), RuleViolation, "R7")


def test_extend_records_the_old_and_new_due_date_and_reason() -> None:
    ca = approved()
    ca.extend("a2", "2026-06-30", "Supplier tooling lead time")
    assert event_names(ca) == ["DueDateExtended"]
    item = ca.item("A2")
    assert item["due"] == "2026-06-30"
    assert item["extensions"] == [{"from": "2026-05-15", "to": "2026-06-30",
                                   "reason": "Supplier tooling lead time", "by": QUALITY,
                                   "at": item["extensions"][0]["at"]}]
    ca.extend("A2", "2026-07-31", "Second delay")
    assert [e["from"] for e in ca.item("A2")["extensions"]] == ["2026-05-15", "2026-06-30"]
    assert ca.status == "approved"


@pytest.mark.parametrize("due", ["2026-05-15", "2026-05-14", "2025-12-31"])
def test_extend_refuses_a_date_not_later_than_the_current_one(due: str) -> None:
    """R5."""
    ca = approved()
    assert_refused(ca, lambda: ca.extend("A2", due, "Needs time"), RuleViolation, "R5")


@pytest.mark.parametrize("reason", ["", "   "])
def test_extend_needs_a_reason(reason: str) -> None:
    """R5."""
    ca = approved()
    assert_refused(ca, lambda: ca.extend("A2", "2026-06-30", reason), RuleViolation, "R5")


def test_extend_refused_for_a_done_item() -> None:
    ca = approved()
    act(TECHNICIAN)
    ca.complete("A1", "done", [])
    act(QUALITY)
    assert_refused(ca, lambda: ca.extend("A1", "2026-09-01", "late"), RuleViolation, "R5")


def test_extend_refused_for_an_unknown_item() -> None:
    ca = approved()
    assert_refused(ca, lambda: ca.extend("A7", "2026-09-01", "late"), NotFound)


@pytest.mark.parametrize("start", others("approved"))
def test_extend_refused_unless_approved(start: str) -> None:
    ca = STATES[start]()
    assert_refused(ca, lambda: ca.extend("A1", "2027-01-01", "late"), RuleViolation, "R7")


# -- verify ----------------------------------------------------------------------------------


def test_effective_verification() -> None:
    ca = implemented()
    act(VERIFIER)
    signature = sign(ca, VERIFIER, "verification")
    ca.verify(True, "No cracks in 3 lots", [], signature)
    assert event_names(ca) == ["EffectivenessVerified"]
    assert ca.status == "verified"
    assert ca.iteration == 1
    verification = ca.verifications[-1]
    assert verification["effective"] is True
    assert verification["iteration"] == 1
    assert verification["signature"]["meaning"] == "verification"
    assert verification["signature"]["content_sha256"] == signature["content_sha256"]


def test_not_effective_starts_a_new_iteration() -> None:
    ca = implemented()
    act(VERIFIER)
    ca.verify(False, "Two cracked bosses in lot L2402", [], sign(ca, VERIFIER, "verification"))
    assert event_names(ca) == ["EffectivenessNotVerified"]
    assert ca.status == "investigated"
    assert ca.iteration == 2
    assert ca.verifications[-1]["effective"] is False
    assert ca.verifications[-1]["iteration"] == 1
    # The failed actions stay; a new analysis and plan follow, then a new approval.
    assert [i["state"] for i in ca.items] == ["done", "done"]
    act(OWNER)
    ca.investigate("ishikawa", "Resin moisture", "material")
    assert ca.root_cause is not None and ca.root_cause["iteration"] == 2
    assert ca.plan("Moisture check", TECHNICIAN, "2026-08-01", "corrective") == "A3"
    assert ca.items[-1]["iteration"] == 2
    act(QUALITY)
    ca.approve(sign(ca, QUALITY))
    assert ca.approvals[-1]["iteration"] == 2
    act(TECHNICIAN)
    ca.complete("A3", "Check in WI-220", [])
    assert ca.status == "implemented"
    act(VERIFIER)
    ca.verify(True, "Six lots clean", [], sign(ca, VERIFIER, "verification"))
    assert ca.status == "verified"
    assert [(v["iteration"], v["effective"]) for v in ca.verifications] == [(1, False), (2, True)]


@pytest.mark.parametrize("effective", [True, False])
@pytest.mark.parametrize("verifier", [TECHNICIAN, OWNER])
def test_whoever_completed_an_item_cannot_verify(verifier: str, effective: bool) -> None:
    """R3: effectiveness is verified by someone who implemented none of the actions."""
    ca = implemented()
    act(verifier)
    error = assert_refused(
        ca, lambda: ca.verify(effective, "Looks fine", [], sign(ca, verifier, "verification")),
        RuleViolation, "R3")
    assert verifier in str(error)


def test_verifier_who_completed_an_item_of_an_earlier_iteration_is_refused() -> None:
    """R3 covers every item of the CA, not only the current plan."""
    ca = implemented()
    act(VERIFIER)
    ca.verify(False, "Recurred", [], sign(ca, VERIFIER, "verification"))
    act(OWNER)
    ca.investigate("ishikawa", "Resin moisture weakens the boss", "material")
    ca.plan("Moisture check", VERIFIER, "2026-08-01", "corrective")
    act(QUALITY)
    ca.approve(sign(ca, QUALITY))
    act(VERIFIER)
    ca.complete("A3", "Done", [])
    act(TECHNICIAN)
    assert_refused(ca, lambda: ca.verify(True, "ok", [], sign(ca, TECHNICIAN, "verification")),
                   RuleViolation, "R3")


def test_a_second_iteration_plans_only_after_a_new_analysis() -> None:
    ca = implemented()
    act(VERIFIER)
    ca.verify(False, "Recurred", [], sign(ca, VERIFIER, "verification"))
    act(OWNER)
    assert_refused(ca, lambda: ca.plan("Moisture check", TECHNICIAN, "2026-08-01",
                                       "corrective"), RuleViolation, "R7")
    ca.investigate("5-whys", "Resin moisture weakens the boss", "material",
                   whys=["Boss cracks", "Resin wet"])
    assert ca.plan("Moisture check", TECHNICIAN, "2026-08-01", "corrective") == "A3"


def test_verify_needs_a_note() -> None:
    ca = implemented()
    act(VERIFIER)
    assert_refused(ca, lambda: ca.verify(True, " ", [], sign(ca, VERIFIER, "verification")),
                   InvalidInput)


@pytest.mark.parametrize("start", others("implemented"))
def test_verify_refused_unless_implemented(start: str) -> None:
    ca = STATES[start]()
    act(VERIFIER)
    assert_refused(ca, lambda: ca.verify(True, "ok", [], sign(ca, VERIFIER, "verification")),
                   RuleViolation, "R7")


# -- close, cancel, reopen -------------------------------------------------------------------


def test_close_a_verified_ca_names_the_ncs_it_closes() -> None:
    ca = verified()
    act(QUALITY)
    signature = sign(ca, QUALITY)
    ca.close(signature, ["NC-2026-0001"])
    assert event_names(ca) == ["Closed"]
    assert ca.status == "closed"
    assert ca.closure is not None
    assert ca.closure["closed_ncs"] == ["NC-2026-0001"]
    assert ca.closure["signature"]["content_sha256"] == signature["content_sha256"]
    assert ca.closure["signature"]["meaning"] == "approval"


def test_owner_cannot_close_own_ca() -> None:
    """R2."""
    ca = verified()
    act(OWNER)
    assert_refused(ca, lambda: ca.close(sign(ca, OWNER), []), RuleViolation, "R2")


@pytest.mark.parametrize("start", ["open", "investigated", "planned", "approved", "implemented"])
def test_close_refused_before_effectiveness_was_verified(start: str) -> None:
    """R4."""
    ca = STATES[start]()
    assert_refused(ca, lambda: ca.close(sign(ca, QUALITY), []), RuleViolation, "R4")


@pytest.mark.parametrize("start", ["closed", "cancelled"])
def test_close_refused_when_closed_or_cancelled(start: str) -> None:
    ca = STATES[start]()
    assert_refused(ca, lambda: ca.close(sign(ca, QUALITY), []), RuleViolation, "R7")


@pytest.mark.parametrize("start", ACTIVE)
def test_cancel_any_active_ca(start: str) -> None:
    ca = STATES[start]()
    act(QUALITY)
    ca.cancel("Merged into CA-2026-0002")
    events = ca.collect_events()
    assert [type(e).__name__ for e in events] == ["Cancelled"]
    assert events[0].reason == "Merged into CA-2026-0002"
    assert ca.status == "cancelled"
    assert ca.cancellation is not None and ca.cancellation["by"] == QUALITY


@pytest.mark.parametrize("reason", ["", "  "])
def test_cancel_needs_a_reason(reason: str) -> None:
    """R6."""
    ca = planned()
    assert_refused(ca, lambda: ca.cancel(reason), RuleViolation, "R6")


@pytest.mark.parametrize("start", ["closed", "cancelled"])
def test_cancel_refused_when_closed_or_cancelled(start: str) -> None:
    ca = STATES[start]()
    assert_refused(ca, lambda: ca.cancel("again"), RuleViolation, "R7")


@pytest.mark.parametrize("start", ["closed", "cancelled"])
def test_reopen_returns_to_investigated(start: str) -> None:
    ca = STATES[start]()
    count = len(ca.items)
    ca.reopen("Cracks recurred in lot L2502")
    events = ca.collect_events()
    assert [type(e).__name__ for e in events] == ["Reopened"]
    assert events[0].reason == "Cracks recurred in lot L2502"
    assert ca.status == "investigated"
    assert ca.closure is None and ca.cancellation is None
    assert len(ca.items) == count


@pytest.mark.parametrize("start", ACTIVE)
def test_reopen_refused_unless_closed_or_cancelled(start: str) -> None:
    ca = STATES[start]()
    assert_refused(ca, lambda: ca.reopen("why not"), RuleViolation, "R7")


def test_reopen_needs_a_reason() -> None:
    """R6."""
    ca = closed()
    assert_refused(ca, lambda: ca.reopen(""), RuleViolation, "R6")


# -- content digest (R9) ---------------------------------------------------------------------


def test_content_digest_is_stable_for_equal_content() -> None:
    assert opened().content_digest() == opened().content_digest()
    assert approved().content_digest() != planned().content_digest()


@pytest.mark.parametrize(
    "overrides",
    [{"ref": "CA-2026-0002"}, {"title": "Housing cracked"}, {"owner": TECHNICIAN},
     {"linked_ncs": []}, {"problem": "Cracks at boss B3 within weeks"}],
)
def test_content_digest_differs_when_content_differs(overrides: dict[str, Any]) -> None:
    assert opened(**overrides).content_digest() != opened().content_digest()


def test_signatures_bind_the_content_at_signing() -> None:
    ca = planned()
    at_approval = ca.content_digest()
    act(QUALITY)
    ca.approve(sign(ca, QUALITY))
    assert ca.approvals[0]["signature"]["content_sha256"] == at_approval
    assert ca.content_digest() != at_approval


def test_r3_holds_an_assignee_whose_item_the_owner_completed() -> None:
    ca = approved()
    assert ca.items[0]["assignee"] == TECHNICIAN
    act(OWNER)
    ca.complete("A1", "Sorted by the technician, recorded by the owner", [])
    ca.complete("A2", "Insert replaced", [])
    ca.collect_events()
    act(TECHNICIAN)
    error = assert_refused(
        ca, lambda: ca.verify(True, "ok", [], sign(ca, TECHNICIAN, "verification")),
        RuleViolation, "R3")
    assert "A1" in str(error)


def test_r3_the_owner_never_verifies() -> None:
    ca = implemented()
    act(ca.owner)
    error = assert_refused(
        ca, lambda: ca.verify(True, "ok", [], sign(ca, ca.owner, "verification")),
        RuleViolation, "R3")
    assert "owns" in str(error)
