"""`capa user email` and `capa notify` through the command line, against a real SMTP server on
a loopback port (tests/support/mailbox.py): who receives what, each message once per threshold,
an extension re-arming it, dry runs, failures, and hostile text kept out of every header."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.mailbox import Mailbox, free_port, running_mailbox

if TYPE_CHECKING:
    from conftest import Capa

DOMAIN = "northwind.example"
QUALITY = ("jchen", "mhernandez", "rkowalski")


def address(user: str) -> str:
    return f"{user}@{DOMAIN}"


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with running_mailbox() as box:
        yield box


@pytest.fixture
def staffed(capa: Capa) -> Capa:
    """The plant's store, every person with an e-mail address but the reporter."""
    for user in (capa.quality_manager, capa.quality_engineer, capa.owner, capa.technician,
                 capa.verifier):
        capa.write("user", "email", user, address(user))
    return capa


def notify(capa: Capa, box: Mailbox | None, *args: str, user: str | None = None,
           code: int = 0, **env: str | None) -> dict[str, Any]:
    if box is not None:
        env.setdefault("CAPA_SMTP_URL", box.url)
    env.setdefault("CAPA_SMTP_FROM", f"capa@{DOMAIN}")
    outcome = capa.run("--json", "notify", *args, user=user or capa.quality_manager, **env)
    assert outcome.code == code, (outcome.stdout, outcome.stderr)
    report: dict[str, Any] = outcome.json()
    return report


def ca_with_items(capa: Capa, *items: tuple[str, str, int], title: str = "Housing cracks"
                  ) -> str:
    """An approved CA owned by apatel with action items (text, assignee, due in N days)."""
    ref = str(capa.write("ca", "open", "--title", title, "--problem", "Cracks at boss B2",
                         "--owner", capa.owner, user=capa.quality_engineer)["id"])
    capa.write("ca", "investigate", ref, "--method", "other", "--root-cause", "Worn insert",
               "--category", "machine", user=capa.owner)
    for text, assignee, days in items:
        late = ["--allow-past-due", "--reason", "Entered late from the paper register"] \
            if days < 0 else []
        capa.write("ca", "plan", ref, "--action", text, "--assignee", assignee, "--due",
                   capa.day(days), "--type", "corrective", *late, user=capa.owner)
    capa.write("ca", "approve", ref)
    return ref


def sent_keys(report: dict[str, Any], key: str = "sent") -> set[tuple[str, str, str | None,
                                                                      str]]:
    return {(m["kind"], m["record"], m["action"], m["to"]) for m in report[key]}


# -- addresses -----------------------------------------------------------------------------


def test_an_address_is_given_on_adding_and_changed_later(capa: Capa) -> None:
    added = capa.run("--json", "user", "add", "qsmith", "--full-name", "Quinn Smith", "--role",
                     "quality", "--email", "Quinn.Smith@Northwind.Example",
                     CAPA_NEW_PASSWORD=capa.password)
    assert added.code == 0, added.stderr
    users = {u["user"]: u for u in capa.run("--json", "user", "list").json()}
    assert users["qsmith"]["email"] == "Quinn.Smith@northwind.example"
    assert users[capa.owner]["email"] is None
    # Anyone who writes sets their own address; the administrator anyone's.
    own = capa.write("user", "email", capa.owner, address(capa.owner), user=capa.owner)
    assert own["email"] == address(capa.owner)
    capa.write("user", "email", "qsmith", "quinn@northwind.example")
    users = {u["user"]: u for u in capa.run("--json", "user", "list").json()}
    assert users["qsmith"]["email"] == "quinn@northwind.example"
    assert users[capa.owner]["email"] == address(capa.owner)
    assert "quinn@northwind.example" in capa.run("user", "list").stdout
    trail = capa.run("--json", "history", "USER-qsmith").json()
    assert [e["event_type"] for e in trail].count("EmailAddressChanged") == 2


@pytest.mark.parametrize("hostile", [
    "lnguyen@northwind.example\r\nBcc: attacker@evil.example",
    "lnguyen@northwind.example\nX-Injected: yes",
    "lnguyen@northwind.example\r",
    "Linh <lnguyen@northwind.example>",
    "lnguyen@northwind.example, attacker@evil.example",
    "not-an-address",
    "lnguyen@localhost",
    "lnguyen@northwind.example\x00",
])
def test_a_hostile_or_malformed_address_is_refused_and_nothing_is_written(
        capa: Capa, hostile: str) -> None:
    error = capa.refused("user", "email", capa.technician, hostile, code=2)
    assert "\n" not in error["message"] and "\r" not in error["message"]
    users_before = capa.run("--json", "user", "list").json()
    capa.refused("user", "add", "qsmith", "--full-name", "Quinn Smith", "--role", "quality",
                 "--email", hostile, code=2, CAPA_NEW_PASSWORD=capa.password)
    assert capa.run("--json", "user", "list").json() == users_before


def test_only_an_administrator_sets_another_persons_address(capa: Capa) -> None:
    error = capa.refused("user", "email", capa.technician, "x@northwind.example", code=4,
                         user=capa.owner)
    assert "may not" in error["message"]
    capa.refused("user", "email", capa.technician, "x@northwind.example", code=4,
                 user="dbrooks-none")


# -- notify ------------------------------------------------------------------------------------


def test_each_message_goes_to_the_right_people_once(staffed: Capa, mailbox: Mailbox) -> None:
    capa = staffed
    soon = ca_with_items(capa, ("Sort lot L2311", capa.technician, 3),
                         ("Replace gate insert", capa.owner, 30))
    late = ca_with_items(capa, ("Recalibrate torque driver", capa.technician, -2),
                         title="Torque drift")
    escalated = ca_with_items(capa, ("Requalify supplier", capa.technician, -20),
                              title="Resin moisture")
    done = ca_with_items(capa, ("Update work instruction", capa.technician, 5),
                         title="Label smudge")
    capa.write("ca", "complete", done, "A1", "--note", "WI-12 rev C", user=capa.technician)

    before = capa.events()
    report = notify(capa, mailbox)
    expected = {
        ("due-soon", soon, "A1", capa.technician),
        ("overdue", late, "A1", capa.technician), ("overdue", late, "A1", capa.owner),
        ("overdue", escalated, "A1", capa.technician), ("overdue", escalated, "A1", capa.owner),
        *(("escalation", escalated, "A1", q) for q in QUALITY),
        *(("awaiting-verification", done, None, q) for q in QUALITY),
    }
    assert sent_keys(report) == expected
    assert report["failed"] == [] and report["already_sent"] == 0
    # Each message recorded as one event; the reporter has no address but is owed nothing.
    assert capa.events() == before + len(expected)
    assert report["skipped"] == []

    received = mailbox.messages()
    assert len(received) == len(expected)
    for message in received:
        assert len(message.recipients) == 1
        assert message.message["To"] == message.recipients[0]
        assert message.sender == f"capa@{DOMAIN}"
        assert capa.password not in message.raw.decode("utf-8", "replace")

    [due_soon] = [m for m in mailbox.to(address(capa.technician)) if soon in m.subject]
    assert due_soon.subject == f"[capa] Due in 3 days: {soon} A1 Sort lot L2311"
    assert "Hello Linh Nguyen," in due_soon.body
    assert f"due in 3 days, on {capa.day(3)}" in due_soon.body
    assert "Owner: Anil Patel (apatel)" in due_soon.body
    [overdue] = [m for m in mailbox.to(address(capa.owner)) if late in m.subject]
    assert overdue.subject == f"[capa] Overdue by 2 days: {late} A1 Recalibrate torque driver"
    for q in QUALITY:
        subjects = [m.subject for m in mailbox.to(address(q))]
        assert f"[capa] Escalation: {escalated} A1 overdue by 20 days: Requalify supplier" \
            in subjects
        assert f"[capa] Awaiting verification: {done} Label smudge" in subjects

    # A second run sends nothing new and records nothing.
    mailbox.clear()
    again = notify(capa, mailbox)
    assert again["sent"] == [] and again["already_sent"] == len(expected)
    assert mailbox.messages() == []
    assert capa.events() == before + len(expected)

    trail = capa.run("--json", "history", late).json()
    assert "ReminderSent" not in {e["event_type"] for e in trail}
    # The reminders are part of the audit trail: it verifies, and the export carries them.
    verified = capa.run("--json", "audit", "verify", user=capa.reporter)
    assert verified.code == 0, verified.stderr
    assert verified.json()["status"] == "verified"
    exported = capa.run("--json", "export", "--format", "jsonl")
    assert exported.code == 0, exported.stderr
    assert sum(1 for e in exported.json() if e["type"] == "Reminder.ReminderSent") == len(expected)


def test_an_extension_re_arms_the_reminders_of_its_item(staffed: Capa,
                                                         mailbox: Mailbox) -> None:
    capa = staffed
    ref = ca_with_items(capa, ("Recalibrate torque driver", capa.technician, -3))
    first = notify(capa, mailbox)
    assert sent_keys(first) == {("overdue", ref, "A1", capa.technician),
                                ("overdue", ref, "A1", capa.owner)}
    capa.write("ca", "extend", ref, "A1", "--due", capa.day(2), "--reason",
               "Calibration lab booked for this week")
    mailbox.clear()
    second = notify(capa, mailbox)
    assert sent_keys(second) == {("due-soon", ref, "A1", capa.technician)}
    [message] = mailbox.messages()
    assert message.subject.startswith(f"[capa] Due in 2 days: {ref} A1")
    assert notify(capa, mailbox)["sent"] == []
    # Still late after a second extension into the past: a new overdue message for the new date.
    capa.write("ca", "extend", ref, "A1", "--due", capa.day(3),
               "--reason", "Lab slot moved")
    assert sent_keys(notify(capa, mailbox)) == {("due-soon", ref, "A1", capa.technician)}


def test_a_dry_run_lists_and_neither_sends_nor_records(staffed: Capa, mailbox: Mailbox) -> None:
    capa = staffed
    ref = ca_with_items(capa, ("Sort lot L2311", capa.technician, 10))
    before = capa.events()
    # No mail server is needed for a preview.
    today = notify(capa, None, "--dry-run", CAPA_SMTP_URL=None)
    assert today["dry_run"] is True and today["would_send"] == [] and today["sent"] == []
    ahead = notify(capa, None, "--dry-run", "--today", capa.day(5), CAPA_SMTP_URL=None)
    assert sent_keys(ahead, "would_send") == {("due-soon", ref, "A1", capa.technician)}
    assert ahead["would_send"][0]["address"] == address(capa.technician)
    assert notify(capa, mailbox, "--dry-run", "--due-soon-days", "10")["would_send"]
    assert mailbox.messages() == []
    assert capa.events() == before
    human = capa.run("notify", "--dry-run", "--due-soon-days", "10")
    assert human.code == 0, human.stderr
    assert "dry run" in human.stdout and "would send" in human.stdout and ref in human.stdout
    # The real run afterwards still sends it: the dry runs recorded nothing.
    assert sent_keys(notify(capa, mailbox, "--due-soon-days", "10")) == {
        ("due-soon", ref, "A1", capa.technician)}


def test_thresholds_come_from_options_or_the_environment(staffed: Capa,
                                                         mailbox: Mailbox) -> None:
    capa = staffed
    ref = ca_with_items(capa, ("Requalify supplier", capa.technician, -5))
    assert not any(m["kind"] == "escalation"
                   for m in notify(capa, None, "--dry-run")["would_send"])
    by_env = notify(capa, None, "--dry-run", CAPA_NOTIFY_ESCALATE_AFTER_DAYS="5")
    assert {("escalation", ref, "A1", q) for q in QUALITY} <= sent_keys(by_env, "would_send")
    by_option = notify(capa, None, "--dry-run", "--escalate-after-days", "5")
    assert by_option["thresholds"] == {"due_soon_days": 7, "escalate_after_days": 5}
    assert sent_keys(by_option, "would_send") == sent_keys(by_env, "would_send")


def test_a_person_without_an_address_is_reported_as_skipped(capa: Capa,
                                                           mailbox: Mailbox) -> None:
    ref = ca_with_items(capa, ("Sort lot L2311", capa.technician, 1))
    before = capa.events()
    report = notify(capa, mailbox)
    assert report["sent"] == []
    assert [(s["to"], s["reason"]) for s in report["skipped"]] == [
        (capa.technician, "no e-mail address")]
    assert capa.events() == before
    human = capa.run("notify", CAPA_SMTP_URL=mailbox.url)
    assert "skipped" in human.stdout and "no e-mail address" in human.stdout
    capa.write("user", "email", capa.technician, address(capa.technician))
    assert sent_keys(notify(capa, mailbox)) == {("due-soon", ref, "A1", capa.technician)}


def test_a_deactivated_quality_user_is_not_sent_escalations(staffed: Capa,
                                                            mailbox: Mailbox) -> None:
    capa = staffed
    capa.write("user", "deactivate", capa.verifier)
    ref = ca_with_items(capa, ("Requalify supplier", capa.technician, -15))
    report = notify(capa, mailbox)
    assert {m["to"] for m in report["sent"] if m["kind"] == "escalation"} == {
        capa.quality_engineer, capa.quality_manager}
    assert mailbox.to(address(capa.verifier)) == []
    assert ref


def test_hostile_text_never_reaches_a_header(staffed: Capa, mailbox: Mailbox) -> None:
    capa = staffed
    hostile = ("Sort lot\r\nBcc: attacker@evil.example\r\nX-Injected: yes\r\n\r\n"
               "forged body")
    ref = ca_with_items(capa, (hostile, capa.technician, 2))
    report = notify(capa, mailbox)
    assert sent_keys(report) == {("due-soon", ref, "A1", capa.technician)}
    [received] = mailbox.messages()
    assert received.recipients == [address(capa.technician)]
    headers = {name.lower() for name in received.message}
    assert "bcc" not in headers and "x-injected" not in headers
    assert "\n" not in received.subject and "\r" not in received.subject
    assert received.subject.startswith(f"[capa] Due in 2 days: {ref} A1 Sort lot Bcc: attacker")
    lines = received.raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert not [line for line in lines if line.lower().startswith((b"bcc", b"x-injected"))]
    assert len([line for line in lines if line.startswith(b"Subject:")]) == 1
    # The body keeps the text, as text.
    assert "X-Injected: yes" in received.body


def test_a_message_the_server_refuses_is_not_recorded_and_goes_next_time(
        staffed: Capa, mailbox: Mailbox) -> None:
    capa = staffed
    ref = ca_with_items(capa, ("Recalibrate torque driver", capa.technician, -2))
    mailbox.refuse(address(capa.technician))
    before = capa.events()
    outcome = capa.run("--json", "notify", CAPA_SMTP_URL=mailbox.url)
    assert outcome.code == 5, outcome.stderr
    report = outcome.json()
    assert sent_keys(report) == {("overdue", ref, "A1", capa.owner)}
    assert sent_keys(report, "failed") == {("overdue", ref, "A1", capa.technician)}
    error = outcome.error()
    assert error["code"] == 5 and "could not be sent" in error["message"]
    assert capa.events() == before + 1
    mailbox.refused.clear()
    assert sent_keys(notify(capa, mailbox)) == {("overdue", ref, "A1", capa.technician)}


def test_an_unreachable_server_sends_and_records_nothing_and_names_no_password(
        staffed: Capa) -> None:
    capa = staffed
    ca_with_items(capa, ("Recalibrate torque driver", capa.technician, -2))
    before = capa.events()
    url = f"smtp://capa:s3cret-smtp-pass@127.0.0.1:{free_port()}"
    outcome = capa.run("notify", CAPA_SMTP_URL=url)
    assert outcome.code == 5
    assert "s3cret-smtp-pass" not in outcome.stdout + outcome.stderr
    assert "could not reach the mail server" in outcome.stdout + outcome.stderr
    assert capa.events() == before


@pytest.mark.parametrize("args, env", [
    ((), {"CAPA_SMTP_URL": None}),
    ((), {"CAPA_SMTP_URL": ""}),
    ((), {"CAPA_SMTP_URL": "http://mail.example.com"}),
    ((), {"CAPA_SMTP_URL": "smtp://mail.example.com?tls=maybe"}),
    (("--today", "2030-01-01"), {"CAPA_SMTP_URL": "smtp://127.0.0.1:1"}),
    (("--dry-run", "--today", "31/12/2026"), {}),
    (("--due-soon-days", "-1"), {"CAPA_SMTP_URL": "smtp://127.0.0.1:1"}),
    (("--escalate-after-days", "0", "--dry-run"), {}),
], ids=["no-url", "empty-url", "http-url", "unknown-option", "today-without-dry-run",
        "bad-date", "negative-days", "zero-escalation"])
def test_notify_misuse_is_exit_2_and_records_nothing(staffed: Capa, args: tuple[str, ...],
                                                     env: dict[str, str | None]) -> None:
    capa = staffed
    ca_with_items(capa, ("Recalibrate torque driver", capa.technician, -2))
    error = capa.refused("notify", *args, code=2, **env)
    assert "\n" not in error["message"]


def test_no_mail_server_says_how_to_name_one(staffed: Capa) -> None:
    outcome = staffed.run("notify", CAPA_SMTP_URL=None)
    assert outcome.code == 2
    assert outcome.stderr.count("\n") == 1 and "CAPA_SMTP_URL" in outcome.stderr


@pytest.mark.parametrize("role_user", ["apatel", "tokafor", "dbrooks-none"])
def test_notify_is_for_quality_and_admin_only(staffed: Capa, role_user: str) -> None:
    staffed.refused("notify", "--dry-run", code=4, user=role_user)


def test_setting_an_address_is_refused_for_an_unknown_or_deactivated_user_and_when_unchanged(
        capa: Capa) -> None:
    capa.refused("user", "email", "nobody", "nobody@northwind.example", code=3)
    capa.refused("user", "email", "Not An Id!", "x@northwind.example", code=2)
    capa.write("user", "email", capa.technician, address(capa.technician))
    # The same address again changes nothing, so it records nothing; the domain's case is
    # not part of the address.
    error = capa.refused("user", "email", capa.technician,
                         address(capa.technician).replace("northwind", "NorthWind"), code=2)
    assert "already" in error["message"]
    capa.write("user", "deactivate", capa.reporter)
    error = capa.refused("user", "email", capa.reporter, address(capa.reporter), code=2)
    assert "deactivated" in error["message"]
