"""Steps of features/corrective_action/reminders.feature: e-mail addresses, and the reminders
`capa notify` sends through a real SMTP server on a loopback port (tests/support/mailbox.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pytest_bdd import given, parsers, then, when

from capa.domain.reminder import Reminder
from tests.bdd.world import World, advance_ca, assess_needing_ca, day, open_default_ca
from tests.support.cast import QUALITY_MANAGER, QUALITY_TEAM
from tests.support.mailbox import Mailbox, running_mailbox

#: A reminder as the feature names it, as capa names it, and how its subject starts.
KINDS = {"due soon": ("due-soon", "[capa] Due "), "overdue": ("overdue", "[capa] Overdue by "),
         "escalation": ("escalation", "[capa] Escalation: "),
         "awaiting verification": ("awaiting-verification", "[capa] Awaiting verification: ")}
SENDER = "capa@northwind.example"


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with running_mailbox() as box:
        yield box


@pytest.fixture
def addresses() -> dict[str, str]:
    """user -> the e-mail address the scenario gave them."""
    return {}


@pytest.fixture
def reminders() -> dict[str, Any]:
    """The outcome of the latest run of the reminders (empty until one ran)."""
    return {}


# -- the people and the mail server -----------------------------------------------------------


@given(parsers.parse('everyone of the quality team but "{left_out}" has an e-mail address at '
                     '"{domain}"'))
def everyone_has_an_address(world: World, addresses: dict[str, str], left_out: str,
                            domain: str) -> None:
    for user in QUALITY_TEAM:
        if user != left_out:
            addresses[user] = f"{user}@{domain}"
            world.act("admin", lambda app, u=user: app.identity.set_email(u, addresses[u]))


@given(parsers.parse('the mail server of "{organisation}" is running'))
def the_mail_server(mailbox: Mailbox, organisation: str) -> None:
    assert mailbox.messages() == []


@given(parsers.parse('"{user}" changed their own e-mail address to "{address}"'))
def changed_own_address(world: World, addresses: dict[str, str], user: str,
                        address: str) -> None:
    world.act(user, lambda app: app.identity.set_email(user, address))
    addresses[user] = address


@when(parsers.parse('"{user}" sets the e-mail address of "{other}" to "{address}"'))
def sets_address(world: World, user: str, other: str, address: str) -> None:
    world.attempt(user, lambda app: app.identity.set_email(other, address))


@when(parsers.parse('"{user}" sets the e-mail address of "{other}" to "{address}" followed by '
                    'the line "{line}"'))
def sets_hostile_address(world: World, user: str, other: str, address: str, line: str) -> None:
    world.attempt(user, lambda app: app.identity.set_email(other, f"{address}\r\n{line}"))


# -- the actions that fall due ----------------------------------------------------------------


@given(parsers.parse('the corrective action "{ca}" owned by "{owner}" has the action "{text}" '
                     'assigned to "{assignee}", due {when}'))
def ca_with_an_action(world: World, ca: str, owner: str, text: str, assignee: str,
                      when: str) -> None:
    nc = f"{ca}-nonconformity"
    assess_needing_ca(world, nc)
    open_default_ca(world, ca, owner, nc)
    advance_ca(world, ca, "investigated")
    ref, due = world.ref(ca), day(when)
    world.act(owner, lambda app: app.corrective_actions.plan_ca(
        ref, action=text, assignee=assignee, due=due, action_type="corrective",
        past_due_reason="Entered late from the paper register" if "ago" in when else None))
    world.act(QUALITY_MANAGER, lambda app: app.corrective_actions.approve_ca(ref))


@given(parsers.parse('"{user}" extended action "{number}" of "{ca}" to {days:d} days from now '
                     'because "{reason}"'))
def extended(world: World, user: str, number: str, ca: str, days: int, reason: str) -> None:
    ref, due = world.ref(ca), day(f"in {days} days")
    world.act(user, lambda app: app.corrective_actions.extend_action(ref, number, due=due,
                                                                     reason=reason))


# -- sending ----------------------------------------------------------------------------------


def _run(world: World, mailbox: Mailbox, reminders: dict[str, Any], user: str, *,
         dry_run: bool, given: bool) -> None:
    def send(app: Any) -> Any:
        return app.notifications.notify(dry_run=dry_run, smtp_url=mailbox.url, sender=SENDER)

    report = world.act(user, send) if given else world.attempt(user, send)
    reminders.clear()
    reminders.update(report or {})
    if given:
        mailbox.clear()


@given(parsers.parse('"{user}" sent the reminders that were due'))
def sent_before(world: World, mailbox: Mailbox, reminders: dict[str, Any], user: str) -> None:
    _run(world, mailbox, reminders, user, dry_run=False, given=True)
    assert reminders["sent"] and not reminders["failed"]


@when(parsers.parse('"{user}" sends the reminders that are due'))
def sends(world: World, mailbox: Mailbox, reminders: dict[str, Any], user: str) -> None:
    _run(world, mailbox, reminders, user, dry_run=False, given=False)


@when(parsers.parse('"{user}" previews the reminders that are due'))
def previews(world: World, mailbox: Mailbox, reminders: dict[str, Any], user: str) -> None:
    _run(world, mailbox, reminders, user, dry_run=True, given=False)


# -- what was received ------------------------------------------------------------------------


def _received(world: World, mailbox: Mailbox, reminders: dict[str, Any],
              addresses: dict[str, str], user: str, kind: str, ca: str,
              action: str | None) -> None:
    world.expect_no_refusal()
    code, subject = KINDS[kind]
    ref = world.ref(ca)
    assert any((m["kind"], m["record"], m["action"], m["to"]) == (code, ref, action, user)
               for m in reminders["sent"]), reminders
    messages = [m for m in mailbox.to(addresses[user])
                if m.subject.startswith(subject) and ref in m.subject]
    assert len(messages) == 1, [m.subject for m in mailbox.to(addresses[user])]
    assert world.people[user] in messages[0].body


@then(parsers.parse('"{user}" received the "{kind}" reminder about action "{action}" of "{ca}"'))
def received_about_action(world: World, mailbox: Mailbox, reminders: dict[str, Any],
                          addresses: dict[str, str], user: str, kind: str, action: str,
                          ca: str) -> None:
    _received(world, mailbox, reminders, addresses, user, kind, ca, action)


@then(parsers.parse('"{user}" received the "{kind}" reminder about "{ca}"'))
def received_about_ca(world: World, mailbox: Mailbox, reminders: dict[str, Any],
                      addresses: dict[str, str], user: str, kind: str, ca: str) -> None:
    _received(world, mailbox, reminders, addresses, user, kind, ca, None)


@then("nobody else received a message")
def nobody_else(world: World, mailbox: Mailbox, reminders: dict[str, Any],
                addresses: dict[str, str]) -> None:
    expected = sorted(addresses[m["to"]] for m in reminders["sent"])
    assert sorted(r for m in mailbox.messages() for r in m.recipients) == expected


@then("nobody received a message")
def nobody(world: World, mailbox: Mailbox, reminders: dict[str, Any]) -> None:
    assert mailbox.messages() == []
    assert reminders.get("sent", []) == []


@then("each reminder sent is recorded with its recipient, its record and the time it was "
      "sent")
def recorded(world: World, reminders: dict[str, Any], addresses: dict[str, str]) -> None:
    world.expect_no_refusal()
    app = world.app
    topic = "capa.domain.reminder:Reminder.ReminderSent"
    found = [app.mapper.to_domain_event(n) for n in app.recorder.select_notifications(
        start=None, limit=1000, topics=[topic])]
    assert len(found) == len(reminders["sent"]) > 0
    for event, message in zip(found, reminders["sent"], strict=True):
        reminder = app.repository.get(event.originator_id)
        assert isinstance(reminder, Reminder)
        assert (reminder.kind, reminder.record, reminder.action, reminder.recipient,
                reminder.address) == (message["kind"], message["record"], message["action"],
                                      message["to"], addresses[message["to"]])
        assert event.actor == QUALITY_MANAGER
        assert world.started <= event.timestamp


@then(parsers.parse('the preview lists the "{kind}" reminder to "{user}" about action '
                    '"{action}" of "{ca}"'))
def preview_lists(world: World, reminders: dict[str, Any], kind: str, user: str, action: str,
                  ca: str) -> None:
    world.expect_no_refusal()
    assert reminders["dry_run"] is True
    assert (KINDS[kind][0], world.ref(ca), action, user) in {
        (m["kind"], m["record"], m["action"], m["to"]) for m in reminders["would_send"]}


@then(parsers.parse('the "{kind}" reminder to "{user}" is reported as skipped for want of an '
                    'e-mail address'))
def skipped(world: World, reminders: dict[str, Any], kind: str, user: str) -> None:
    world.expect_no_refusal()
    assert [(s["kind"], s["to"], s["reason"]) for s in reminders["skipped"]] == [
        (KINDS[kind][0], user, "no e-mail address")]


@then(parsers.parse('the "{kind}" reminder about action "{action}" of "{ca}" went to '
                    '"{address}"'))
def went_to(world: World, mailbox: Mailbox, reminders: dict[str, Any], kind: str, action: str,
            ca: str, address: str) -> None:
    world.expect_no_refusal()
    ref = world.ref(ca)
    [message] = [m for m in reminders["sent"]
                 if (m["kind"], m["record"], m["action"]) == (KINDS[kind][0], ref, action)]
    assert message["address"] == address
    assert [m.recipients for m in mailbox.messages()] == [[address]]
