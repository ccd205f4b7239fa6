"""Steps of the audit-trail review (features/audit/trail_review.feature): listing the exceptions
of a period, signing the review, and what the dashboard and the integrity check make of it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pytest_bdd import given, parsers, then, when

from capa.audit.errors import TamperDetected
from capa.audit.trail_exceptions import CATEGORIES
from capa.audit.verification import verify_store
from capa.domain.errors import NotPermitted
from capa.domain.record import record_uuid
from capa.domain.trail_review import TRAIL_REVIEW_REF
from tests.bdd.world import World, days_from_today, today
from tests.support.backends import event_rows, query
from tests.support.cast import AUDITOR, QUALITY_MANAGER, REPORTER
from tests.support.reading import reading

WRONG_PASSWORD = "not-the-password-at-all"
_LABELS = {label: key for key, label in CATEGORIES.items()}


def _category(label: str) -> str:
    try:
        return _LABELS[label]
    except KeyError:
        pytest.fail(f"no category {label!r} in a review; there are: {', '.join(_LABELS)}")


def _listed(review: dict[str, Any], label: str) -> list[dict[str, Any]]:
    key = _category(label)
    return [e for e in review["exceptions"] if e["category"] == key]


# -- given ------------------------------------------------------------------------------------


@given(parsers.parse('the nonconformity "{nc}" was reopened because "{reason}"'))
def nc_was_reopened(world: World, nc: str, reason: str) -> None:
    ref = world.ref(nc)
    world.act(QUALITY_MANAGER, lambda app: app.nonconformities.reopen_nc(ref, reason=reason))


@given(parsers.parse('the account "{user}" was locked by five wrong passwords in a row'))
def locked_by_wrong_passwords(world: World, user: str) -> None:
    for _ in range(5):
        with pytest.raises(NotPermitted):
            world.app.identity.authenticate(user, WRONG_PASSWORD)


@given(parsers.parse('a nonconformity "{nc}" detected {days:d} days ago was raised today'))
def raised_late(world: World, nc: str, days: int) -> None:
    result = world.act(REPORTER, lambda app: app.nonconformities.raise_nc(
        title=f"{nc.capitalize()} found in the returns store",
        description="Found while sorting returns; the unit was received weeks ago.",
        source="customer-complaint", severity="major", detected_on=days_from_today(-days)))
    world.refs[nc] = str(result.id)


@given(parsers.parse('"{user}" signed the review of the audit trail of today'))
def signed_review(world: World, user: str) -> None:
    day = today().isoformat()
    world.act(user, lambda app: app.reviews.sign_trail_review(day, day))


@given("someone who can write the store changed the fingerprint that review recorded")
def change_fingerprint(world: World) -> None:
    wanted = record_uuid(TRAIL_REVIEW_REF)
    position, _, _, topic, state = next(r for r in event_rows(world.target)
                                        if r[1] == wanted and r[3].endswith("ReviewRecorded"))
    with reading(world.app):
        digest = world.app.reviews.trail_review(today().isoformat(), today().isoformat())[
            "exceptions_sha256"]
    assert digest.encode() in state
    query(world.target, "UPDATE stored_events SET state = ? WHERE rowid = ?",
          state.replace(digest.encode(), b"f" * 64), position)


# -- when -------------------------------------------------------------------------------------


@when("the auditor reviews the audit trail of today", target_fixture="review")
def auditor_reviews(world: World) -> Any:
    day = today().isoformat()
    return world.attempt(AUDITOR, lambda app: app.reviews.trail_review(day, day))


@when(parsers.parse('"{user}" signs the review of the audit trail of today'),
      target_fixture="review")
def signs_review(world: World, user: str) -> Any:
    day = today().isoformat()
    return world.attempt(user, lambda app: app.reviews.sign_trail_review(day, day))


@when("the quality manager opens the dashboard", target_fixture="page")
def opens_dashboard(world: World) -> str:
    page: str = world.act(QUALITY_MANAGER, lambda app: app.queries.render_dashboard())
    return page


# -- then -------------------------------------------------------------------------------------


@then(parsers.re(r'the review lists (?P<count>\d+) exceptions? under "(?P<label>[^"]+)"'))
def lists_count(world: World, review: dict[str, Any], count: str, label: str) -> None:
    world.expect_no_refusal()
    assert review["counts"][_category(label)] == int(count)
    assert len(_listed(review, label)) == int(count)


@then(parsers.parse('the review lists under "{label}" the record "{alias}", by "{user}", '
                    'because "{reason}"'))
def lists_record_with_reason(world: World, review: dict[str, Any], label: str, alias: str,
                             user: str, reason: str) -> None:
    world.expect_no_refusal()
    found = [(e["actor"], e["reason"]) for e in _listed(review, label)
             if e["record"] == world.ref(alias)]
    assert found == [(user, reason)], found


@then(parsers.parse('the review lists under "{label}" the record "{alias}", by "{user}"'))
def lists_record(world: World, review: dict[str, Any], label: str, alias: str,
                 user: str) -> None:
    world.expect_no_refusal()
    found = [e["actor"] for e in _listed(review, label) if e["record"] == world.ref(alias)]
    assert found == [user], found


@then(parsers.parse('the review does not list the record "{alias}"'))
def does_not_list(world: World, review: dict[str, Any], alias: str) -> None:
    assert world.ref(alias) not in {e["record"] for e in review["exceptions"]}


@then(parsers.parse('the review lists under "{label}" that "{admin}" granted "{user}" the role '
                    '"{role}"'))
def lists_grant(world: World, review: dict[str, Any], label: str, admin: str, user: str,
                role: str) -> None:
    world.expect_no_refusal()
    found = [e for e in _listed(review, label)
             if e["event"] == "RoleGranted" and e["record"] == f"USER-{user}"]
    assert [(e["actor"], e["detail"]) for e in found] == [
        (admin, f"role {role} granted to {user}")]


@then("the signed review keeps the period, the count of each kind of exception and the "
      "fingerprint of the exceptions shown")
def review_kept(world: World, review: dict[str, Any]) -> None:
    world.expect_no_refusal()
    day = today().isoformat()
    with reading(world.app):
        shown = world.app.reviews.trail_review(day, day)
        history = world.app.records.history(TRAIL_REVIEW_REF)
    recorded = next(c.new for e in history if e.event_type == "ReviewRecorded"
                    for c in e.changes if c.field == "reviews")[0]
    assert (recorded["from"], recorded["to"]) == (day, day)
    assert recorded["counts"] == shown["counts"] == review["counts"]
    assert recorded["counts"]["amendments"] == 1
    assert recorded["exceptions_sha256"] == shown["exceptions_sha256"]


@then(parsers.parse('the history of the audit-trail reviews shows the review signed by "{name}" '
                    '("{user}"), meaning "{meaning}"'))
def history_shows_review(world: World, name: str, user: str, meaning: str) -> None:
    with reading(world.app):
        history = world.app.records.history(TRAIL_REVIEW_REF)
    signed = [e.signature for e in history if e.signature is not None]
    assert [(s.full_name, s.user_id, s.meaning, s.kind) for s in signed] == [
        (name, user, meaning, "digital")]


@then("the integrity check of the store passes with that signature checked")
def integrity_passes(world: World) -> None:
    summary = verify_store(world.app, None, world.folder / "no.checkpoints")["signatures"]
    assert summary["digital"] >= 1 and summary["content_checked"] == summary["digital"]


@then("the integrity check of the store reports the review's signature as not matching its "
      "content")
def integrity_reports_review(world: World) -> None:
    with pytest.raises(TamperDetected) as caught:
        verify_store(world.app, None, world.folder / "no.checkpoints")
    assert caught.value.record == TRAIL_REVIEW_REF
    assert "review signature" in str(caught.value) and "folded" in str(caught.value)


@then("the dashboard says the audit trail was never reviewed")
def dashboard_never(page: str) -> None:
    assert "Audit trail last reviewed: never." in page


@then(parsers.parse('the dashboard says the audit trail was last reviewed today by "{name}"'))
def dashboard_reviewed(page: str, name: str) -> None:
    assert f"Audit trail last reviewed: {dt.datetime.now(dt.UTC).date()} by {name}" in page
