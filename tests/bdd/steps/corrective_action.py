"""Steps of corrective actions: what has happened, what people do, what the record shows.

Size: the whole lifecycle of a corrective action, its plan, approvals, action items, evidence
and verifications, in the order features/corrective_action reads; split, a step would be
looked for in two places.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re

from pytest_bdd import given, parsers, then, when

from tests.bdd.world import (
    SLACK,
    World,
    advance_ca,
    assess_needing_ca,
    days_from_today,
    open_default_ca,
    parse_utc,
    rows,
    word,
)
from tests.support.backends import query
from tests.support.cast import QUALITY_MANAGER
from tests.support.reading import reading

# -- corrective actions: what has happened ----------------------------------------------------


@given(parsers.parse('the corrective action "{ca}" owned by "{owner}" was opened for "{nc}"'))
def ca_was_opened(world: World, ca: str, owner: str, nc: str) -> None:
    open_default_ca(world, ca, owner, nc)


@given(parsers.parse('the corrective action "{ca}" owned by "{owner}" has reached "{state}"'))
def ca_has_reached_new(world: World, ca: str, owner: str, state: str) -> None:
    nc = f"{ca}-nonconformity"
    assess_needing_ca(world, nc)
    open_default_ca(world, ca, owner, nc)
    advance_ca(world, ca, state)


@given(parsers.parse('the corrective action "{ca}" has since reached "{state}"'))
def ca_has_reached(world: World, ca: str, state: str) -> None:
    advance_ca(world, ca, state)


@given(parsers.parse('"{user}" planned the "{kind}" action "{text}" for "{ca}", assigned to '
                     '"{assignee}" and due in {days:d} days'))
def ca_was_planned(
    world: World, user: str, kind: str, text: str, ca: str, assignee: str, days: int
) -> None:
    ref = world.ref(ca)
    world.act(user, lambda app: app.corrective_actions.plan_ca(ref, action=text, assignee=assignee,
                                                               due=days_from_today(days),
                                                               action_type=word(kind)))


@given(parsers.parse('"{user}" approved the plan of "{ca}"'))
def ca_was_approved(world: World, user: str, ca: str) -> None:
    ref = world.ref(ca)
    world.act(user, lambda app: app.corrective_actions.approve_ca(ref))


@given(parsers.parse('"{user}" completed action "{number}" of "{ca}" noting "{note}"'))
def action_was_completed(world: World, user: str, number: str, ca: str, note: str) -> None:
    ref = world.ref(ca)
    world.act(user, lambda app: app.corrective_actions.complete_action(ref, number, note=note))


@given(parsers.parse('"{user}" completed action "{number}" of "{ca}" with the evidence file '
                     '"{name}", noting "{note}"'))
def action_was_completed_with_evidence(world: World, user: str, number: str, ca: str, name: str,
                                       note: str) -> None:
    ref, path = world.ref(ca), world.files[name]
    world.act(user, lambda app: app.corrective_actions.complete_action(ref, number, note=note,
                                                                       evidence=[path]))

@given(parsers.parse('"{user}" recorded for "{doer}" that action "{number}" of "{ca}" was done, '
                     'noting "{note}" because "{reason}"'))
def completion_was_recorded_on_behalf(world: World, user: str, doer: str, number: str, ca: str,
                                      note: str, reason: str) -> None:
    ref = world.ref(ca)
    world.act(user, lambda app: app.corrective_actions.complete_action(ref, number, note=note,
                                                                       on_behalf_of=doer,
                                                                       reason=reason))


@given(parsers.parse('"{user}" re-examined the root cause of "{ca}": "{root_cause}", category '
                     '"{category}"'))
def ca_was_reinvestigated(world: World, user: str, ca: str, root_cause: str,
                          category: str) -> None:
    ref = world.ref(ca)
    world.act(user, lambda app: app.corrective_actions.investigate_ca(ref, method="ishikawa",
                                                                      root_cause=root_cause,
                                                                      category=word(category)))


@given(parsers.parse('"{user}" found "{ca}" not effective: "{note}"'))
def ca_was_found_not_effective(world: World, user: str, ca: str, note: str) -> None:
    ref = world.ref(ca)
    world.act(user, lambda app: app.corrective_actions.verify_ca(ref, effective=False, note=note))


@given(parsers.parse('the corrective action "{ca}" was cancelled because "{reason}"'))
def ca_was_cancelled(world: World, ca: str, reason: str) -> None:
    ref = world.ref(ca)
    world.act(QUALITY_MANAGER, lambda app: app.corrective_actions.cancel_ca(ref, reason=reason))


# -- corrective actions: what people do -------------------------------------------------------


@when(parsers.parse('"{user}" opens the corrective action "{ca}" for "{nc}" with owner '
                    '"{owner}"'))
def opens_ca(world: World, user: str, ca: str, nc: str, owner: str) -> None:
    nc_ref = world.ref(nc)
    result = world.attempt(user, lambda app: app.corrective_actions.open_ca(
        title="Housing cracks at screw boss B2",
        problem="IP-200 housings crack at boss B2 within weeks of assembly",
        owner=owner, ncs=[nc_ref]))
    if result is not None:
        world.refs[ca] = result.id


@when(parsers.parse('"{user}" records a "{method}" analysis of "{ca}": root cause '
                    '"{root_cause}", category "{category}"'))
def investigates(
    world: World, user: str, method: str, ca: str, root_cause: str, category: str
) -> None:
    ref = world.ref(ca)
    world.attempt(user, lambda app: app.corrective_actions.investigate_ca(
        ref, method=word(method), root_cause=root_cause, category=word(category)))


@when(parsers.parse('"{user}" records a "{method}" analysis of "{ca}" with the whys below: root '
                    'cause "{root_cause}", category "{category}"'))
def investigates_with_whys(
    world: World, user: str, method: str, ca: str, root_cause: str, category: str,
    datatable: list[list[str]],
) -> None:
    ref = world.ref(ca)
    whys = [row[0] for row in datatable]
    world.attempt(user, lambda app: app.corrective_actions.investigate_ca(
        ref, method=word(method), root_cause=root_cause, category=word(category), whys=whys))


@when(parsers.parse('"{user}" plans the "{kind}" action "{text}" for "{ca}", assigned to '
                    '"{assignee}" and due in {days:d} days'))
def plans(world: World, user: str, kind: str, text: str, ca: str, assignee: str,
          days: int) -> None:
    ref = world.ref(ca)
    world.attempt(user, lambda app: app.corrective_actions.plan_ca(ref, action=text,
                                                                   assignee=assignee,
                                                                   due=days_from_today(days),
                                                                   action_type=word(kind)))


@when(parsers.parse('"{user}" plans the "{kind}" action "{text}" for "{ca}", assigned to '
                    '"{assignee}", due {days:d} days ago'))
def plans_past_due(world: World, user: str, kind: str, text: str, ca: str, assignee: str,
                   days: int) -> None:
    ref = world.ref(ca)
    world.attempt(user, lambda app: app.corrective_actions.plan_ca(ref, action=text,
                                                                   assignee=assignee,
                                                                   due=days_from_today(-days),
                                                                   action_type=word(kind)))


@when(parsers.parse('"{user}" accepts a past due date, planning the "{kind}" action "{text}" for '
                    '"{ca}", assigned to "{assignee}", due {days:d} days ago, because "{reason}"'))
def plans_past_due_with_reason(world: World, user: str, kind: str, text: str, ca: str,
                               assignee: str, days: int, reason: str) -> None:
    ref = world.ref(ca)
    world.attempt(user, lambda app: app.corrective_actions.plan_ca(ref, action=text,
                                                                   assignee=assignee,
                                                                   due=days_from_today(-days),
                                                                   action_type=word(kind),
                                                                   past_due_reason=reason))


@when(parsers.parse('"{user}" approves the plan of "{ca}"'))
def approves(world: World, user: str, ca: str) -> None:
    ref = world.ref(ca)
    world.attempt(user, lambda app: app.corrective_actions.approve_ca(ref))


@when(parsers.parse('"{user}" completes action "{number}" of "{ca}" noting "{note}"'))
def completes(world: World, user: str, number: str, ca: str, note: str) -> None:
    ref = world.ref(ca)
    world.attempt(user, lambda app: app.corrective_actions.complete_action(ref, number, note=note))


@when(parsers.parse('"{user}" completes action "{number}" of "{ca}" with the evidence file '
                    '"{name}", noting "{note}"'))
def completes_with_evidence(
    world: World, user: str, number: str, ca: str, name: str, note: str
) -> None:
    ref, path = world.ref(ca), world.files[name]
    world.attempt(user, lambda app: app.corrective_actions.complete_action(ref, number, note=note,
                                                                           evidence=[path]))


@when(parsers.parse('"{user}" takes the evidence file "{name}" of "{ca}" back out'),
      target_fixture="taken")
def takes_evidence_out(world: World, user: str, name: str, ca: str) -> bytes | None:
    ref = world.ref(ca)
    result = world.attempt(user, lambda app: app.evidence.evidence_file(ref, name))
    return None if result is None else bytes(result[1])


@then(parsers.parse('the file taken out is "{name}" byte for byte'))
def taken_out_whole(taken: bytes | None, world: World, name: str) -> None:
    world.expect_no_refusal()
    assert taken == world.files[name].read_bytes()


@when(parsers.parse('someone with database access rewrites the kept file "{name}"'))
def rewrites_kept_file(world: World, name: str) -> None:

    rows = query(world.target, "SELECT rowid, state FROM stored_events WHERE topic LIKE ?",
                 "%EvidenceStored")
    rowid, state = rows[0]
    forged = base64.b64encode(world.files[name].read_bytes()[::-1]).decode()
    query(world.target, "UPDATE stored_events SET state = ? WHERE rowid = ?",
          re.sub(rb'"content_b64":"[^"]*"', f'"content_b64":"{forged}"'.encode(), bytes(state)),
          rowid)


@when(parsers.parse('"{user}" completes action "{number}" of "{ca}" without a note'))
def completes_without_note(world: World, user: str, number: str, ca: str) -> None:
    ref = world.ref(ca)
    world.attempt(user, lambda app: app.corrective_actions.complete_action(ref, number, note=" "))


@when(parsers.parse('"{user}" extends action "{number}" of "{ca}" by {days:d} days because '
                    '"{reason}"'))
def extends(world: World, user: str, number: str, ca: str, days: int, reason: str) -> None:
    ref, due = _later_due(world, ca, number, days)
    world.attempt(user, lambda app: app.corrective_actions.extend_action(ref, number, due=due,
                                                                         reason=reason))


@when(parsers.parse('"{user}" extends action "{number}" of "{ca}" by {days:d} days without a '
                    'reason'))
def extends_without_reason(world: World, user: str, number: str, ca: str, days: int) -> None:
    ref, due = _later_due(world, ca, number, days)
    world.attempt(user, lambda app: app.corrective_actions.extend_action(ref, number, due=due,
                                                                         reason=""))


def _later_due(world: World, ca: str, number: str, days: int) -> tuple[str, str]:
    item = next(i for i in world.ca(ca).items if i.number == number)
    return world.ref(ca), (dt.date.fromisoformat(item.due) + dt.timedelta(days=days)).isoformat()


@when(parsers.parse('"{user}" verifies "{ca}" as effective: "{note}"'))
def verifies_effective(world: World, user: str, ca: str, note: str) -> None:
    ref = world.ref(ca)
    world.attempt(user, lambda app: app.corrective_actions.verify_ca(ref, effective=True,
                                                                     note=note))


@when(parsers.parse('"{user}" verifies "{ca}" as not effective: "{note}"'))
def verifies_not_effective(world: World, user: str, ca: str, note: str) -> None:
    ref = world.ref(ca)
    world.attempt(user, lambda app: app.corrective_actions.verify_ca(ref, effective=False,
                                                                     note=note))


@when(parsers.parse('"{user}" closes the corrective action "{ca}"'))
def closes_ca(world: World, user: str, ca: str) -> None:
    ref = world.ref(ca)
    world.attempt(user, lambda app: app.corrective_actions.close_ca(ref))


@when(parsers.parse('"{user}" cancels the corrective action "{ca}" because "{reason}"'))
def cancels_ca(world: World, user: str, ca: str, reason: str) -> None:
    ref = world.ref(ca)
    world.attempt(user, lambda app: app.corrective_actions.cancel_ca(ref, reason=reason))


@when(parsers.parse('"{user}" reopens the corrective action "{ca}" because "{reason}"'))
def reopens_ca(world: World, user: str, ca: str, reason: str) -> None:
    ref = world.ref(ca)
    world.attempt(user, lambda app: app.corrective_actions.reopen_ca(ref, reason=reason))


@when(parsers.parse('"{user}" reopens the corrective action "{ca}" without a reason'))
def reopens_ca_without_reason(world: World, user: str, ca: str) -> None:
    ref = world.ref(ca)
    world.attempt(user, lambda app: app.corrective_actions.reopen_ca(ref, reason=""))


# -- corrective actions: what the record shows ------------------------------------------------


@then(parsers.parse('the corrective action "{ca}" is "{status}"'))
def ca_status_is(world: World, ca: str, status: str) -> None:
    assert world.ca(ca).status == status


@then(parsers.parse('the corrective action "{ca}" is owned by "{owner}"'))
def ca_owned_by(world: World, ca: str, owner: str) -> None:
    assert world.ca(ca).owner == owner


@then(parsers.parse('the corrective action "{ca}" is in iteration {iteration:d}'))
def ca_iteration_is(world: World, ca: str, iteration: int) -> None:
    assert world.ca(ca).iteration == iteration


@then(parsers.parse('the current root cause of "{ca}" is "{root_cause}", category "{category}", '
                    'found by "{method}"'))
def current_root_cause(world: World, ca: str, root_cause: str, category: str,
                       method: str) -> None:
    current = world.ca(ca).root_cause
    assert current is not None
    assert (current.root_cause, current.category, current.method) == (
        root_cause, word(category), word(method))


@then(parsers.parse('the why chain of "{ca}" reads:'))
def why_chain_reads(world: World, ca: str, datatable: list[list[str]]) -> None:
    current = world.ca(ca).root_cause
    assert current is not None
    assert current.whys == [row[0] for row in datatable]


@then(parsers.parse('the analyses of "{ca}", oldest first, are:'))
def analyses_are(world: World, ca: str, datatable: list[list[str]]) -> None:
    analyses = world.ca(ca).analyses
    assert [(str(a.iteration), a.method, a.root_cause, a.by) for a in analyses] == [
        (r["iteration"], word(r["method"]), r["root cause"], r["by"]) for r in rows(datatable)]


@then(parsers.parse('the plan of "{ca}" lists:'))
def plan_lists(world: World, ca: str, datatable: list[list[str]]) -> None:
    items = world.ca(ca).items
    assert [(i.number, i.text, i.assignee, i.type, i.due, i.state, str(i.iteration))
            for i in items] == [
        (r["action"], r["text"], r["assignee"], word(r["type"]),
         days_from_today(int(r["due in days"])), r["state"], r["iteration"])
        for r in rows(datatable)]


@then(parsers.parse('the plan of "{ca}" is approved by "{user}", signed with meaning '
                    '"{meaning}"'))
def plan_approved_by(world: World, ca: str, user: str, meaning: str) -> None:
    view = world.ca(ca)
    current = [a for a in view.approvals if a.iteration == view.iteration and not a.voided]
    assert len(current) == 1
    signature = current[0].signature
    assert (signature.user_id, signature.meaning) == (user, meaning)
    assert signature.full_name == world.people[user]
    assert world.started - SLACK <= parse_utc(signature.signed_at) <= dt.datetime.now(dt.UTC)


@then(parsers.parse('the approval of "{ca}" by "{user}" is void'))
def approval_is_void(world: World, ca: str, user: str) -> None:
    approvals = [a for a in world.ca(ca).approvals if a.signature.user_id == user]
    assert approvals and all(a.voided for a in approvals)


@then(parsers.parse('the corrective action "{ca}" has {count:d} approvals, the earliest void'))
def approvals_count(world: World, ca: str, count: int) -> None:
    approvals = world.ca(ca).approvals
    assert len(approvals) == count
    assert [a.voided for a in approvals] == [True] + [False] * (count - 1)


@then(parsers.parse('action "{number}" of "{ca}" was done by "{user}", noting "{note}"'))
def action_done_by(world: World, number: str, ca: str, user: str, note: str) -> None:
    item = next(i for i in world.ca(ca).items if i.number == number)
    assert (item.state, item.completed_by, item.note) == ("done", user, note)
    assert item.completed_at is not None
    assert world.started - SLACK <= parse_utc(item.completed_at) <= dt.datetime.now(dt.UTC)


@then(parsers.parse('action "{number}" of "{ca}" is still open'))
def action_still_open(world: World, number: str, ca: str) -> None:
    item = next(i for i in world.ca(ca).items if i.number == number)
    assert (item.state, item.completed_by, item.note) == ("open", None, None)


@then(parsers.parse('action "{number}" of "{ca}" keeps the evidence file "{name}" unaltered'))
def evidence_kept(world: World, number: str, ca: str, name: str) -> None:
    item = next(i for i in world.ca(ca).items if i.number == number)
    content = world.files[name].read_bytes()
    digest = hashlib.sha256(content).hexdigest()
    assert [(e.name, e.size, e.sha256) for e in item.evidence] == [(name, len(content), digest)]
    with reading(world.app):
        assert world.app.evidence.evidence_content(digest) == content


@then(parsers.parse('action "{number}" of "{ca}" was due {days:d} days ago, accepted because '
                    '"{reason}"'))
def action_accepted_past_due(world: World, number: str, ca: str, days: int, reason: str) -> None:
    item = next(i for i in world.ca(ca).items if i.number == number)
    assert (item.due, item.past_due_reason) == (days_from_today(-days), reason)


@then(parsers.parse('action "{number}" of "{ca}" is due in {days:d} days'))
def action_due_in(world: World, number: str, ca: str, days: int) -> None:
    item = next(i for i in world.ca(ca).items if i.number == number)
    assert item.due == days_from_today(days)


@then(parsers.parse('the due date of action "{number}" of "{ca}" was moved by "{user}" from '
                    '{old:d} to {new:d} days from today because "{reason}"'))
def due_date_moved(world: World, number: str, ca: str, user: str, old: int, new: int,
                   reason: str) -> None:
    item = next(i for i in world.ca(ca).items if i.number == number)
    assert [(x.from_, x.to, x.by, x.reason) for x in item.extensions] == [
        (days_from_today(old), days_from_today(new), user, reason)]


@then(parsers.parse('the latest verification of "{ca}" finds it "{verdict}", signed by "{user}" '
                    'meaning "{meaning}", noting "{note}"'))
def latest_verification(world: World, ca: str, verdict: str, user: str, meaning: str,
                        note: str) -> None:
    verifications = world.ca(ca).verifications
    assert verifications, "no effectiveness verification is recorded"
    latest = verifications[-1]
    assert verdict in ("effective", "not effective")
    assert latest.effective is (verdict == "effective")
    assert (latest.signature.user_id, latest.signature.meaning, latest.note) == (
        user, meaning, note)
    assert latest.signature.full_name == world.people[user]


@then(parsers.parse('the closure of the corrective action "{ca}" is signed by "{user}", meaning '
                    '"{meaning}"'))
def ca_closure_signed(world: World, ca: str, user: str, meaning: str) -> None:
    closure = world.ca(ca).closure
    assert closure is not None
    assert (closure.signature.user_id, closure.signature.meaning) == (user, meaning)
    assert closure.signature.full_name == world.people[user]
