"""Reminders and escalation (SPEC §12): `capa notify` tells people, by e-mail, what is due.

Four messages, each sent once per threshold (per action item or CA, per person, per occasion):

- **due soon**: an open action item due within `due_soon_days` (default 7), to its assignee;
- **overdue**: an open item past its due date, to its assignee and to the CA's owner;
- **escalation**: an item overdue by `escalate_after_days` or more (default 14), to every
  active quality user;
- **awaiting verification**: a CA whose actions are all done, to every active quality user.

The occasion of an item's messages is its due date, so an extension (R5) re-arms them; that of
an awaiting-verification message is the CA's iteration and the time its last action was done.
Every message handed to the server is recorded as a `Reminder` (capa.domain.reminder); one
that fails is not, and goes out on the next run. The read tables only say which CAs to look
at; each is then read from its events, so no cache decides what a message says.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from eventsourcing.utils import get_topic

from capa.adapters.mail import Mail, Mailer, MailFailure, smtp_mailer
from capa.app.core import Core
from capa.app.operations import operation
from capa.domain.corrective_action import CorrectiveAction
from capa.domain.errors import Conflict, InvalidInput
from capa.domain.parts import ActionItem
from capa.domain.reminder import Reminder, ReminderKind, reminder_ref
from capa.domain.user import User, UserStatus
from capa.domain.values import parse_date, valid_email

DEFAULT_DUE_SOON_DAYS = 7
DEFAULT_ESCALATE_AFTER_DAYS = 14
#: The sender when CAPA_SMTP_FROM names none.
DEFAULT_SENDER = "capa@localhost"
_USER_ADDED_TOPIC = get_topic(User.UserAdded)
#: What a header may never hold: line breaks and every other control character.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SUBJECT_TEXT = 60


@dataclass(frozen=True)
class _Message:
    """One message that is due: its reminder's key, recipient and text."""

    kind: str
    record: str
    action: str | None
    occasion: str
    threshold: str
    user: str
    subject: str
    body: str

    @property
    def ref(self) -> str:
        return reminder_ref(self.kind, self.record, self.action, self.occasion, self.user)

    def summary(self, address: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "record": self.record, "action": self.action,
                               "to": self.user, "threshold": self.threshold,
                               "subject": self.subject}
        if address is not None:
            out["address"] = address
        return out


def one_line(text: str, limit: int = _SUBJECT_TEXT) -> str:
    """User text fit for a mail header: every run of control characters (CR and LF among
    them) and spaces becomes one space, and long text is shortened."""
    flat = " ".join(_CONTROL.sub(" ", text).split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def plain_text(text: str) -> str:
    """User text fit for a message body: line breaks kept (as LF), other controls dropped."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(_CONTROL.sub("", line) for line in lines)


class Notifications:
    """Reminder and escalation messages about the core's corrective actions."""

    def __init__(self, core: Core) -> None:
        self.core = core

    @operation("notify")
    def notify(
        self, *, dry_run: bool = False, today: str | None = None,
        due_soon_days: int = DEFAULT_DUE_SOON_DAYS,
        escalate_after_days: int = DEFAULT_ESCALATE_AFTER_DAYS,
        smtp_url: str | None = None, sender: str | None = None, mailer: Mailer | None = None,
    ) -> dict[str, Any]:
        """Send (or with `dry_run` only list) every reminder that is due and not yet sent; the
        outcome of each: sent, would send, failed, or skipped (no address, deactivated)."""
        core = self.core
        actual = dt.datetime.now(dt.UTC).date()
        day = actual if today is None else parse_date(today, "today")
        if day != actual and not dry_run:
            raise InvalidInput("--today is for a preview only: give --dry-run, or leave it out "
                               "to send what is due today")
        if not 0 <= due_soon_days <= 365:
            raise InvalidInput(f"due-soon days must be 0 to 365 (got {due_soon_days})")
        if not 1 <= escalate_after_days <= 3650:
            raise InvalidInput(f"escalate-after days must be 1 to 3650 (got "
                               f"{escalate_after_days})")
        if not dry_run and mailer is None:
            if not (smtp_url or "").strip():
                raise InvalidInput("no mail server: set CAPA_SMTP_URL (e.g. "
                                   "smtp://mail.example.com:587?starttls=yes), or preview with "
                                   "--dry-run")
            address = valid_email(sender or DEFAULT_SENDER) if sender else DEFAULT_SENDER
            mailer = smtp_mailer(str(smtp_url), sender=address)

        people = _People(core)
        messages = list(self._due(day, due_soon_days, escalate_after_days, people))
        report: dict[str, Any] = {
            "as_of": day.isoformat(), "dry_run": dry_run,
            "thresholds": {"due_soon_days": due_soon_days,
                           "escalate_after_days": escalate_after_days},
            "sent": [], "would_send": [], "failed": [], "skipped": [], "already_sent": 0}
        try:
            for message in messages:
                self._deliver(message, people, report, mailer, day, dry_run)
        finally:
            if mailer is not None:
                mailer.close()
        return report

    def _deliver(self, message: _Message, people: _People, report: dict[str, Any],
                 mailer: Mailer | None, day: dt.date, dry_run: bool) -> None:
        core = self.core
        if core.exists(message.ref):
            report["already_sent"] += 1
            return
        account = people.get(message.user)
        reason = (None if account is not None and account.email
                  and account.status != UserStatus.DEACTIVATED else
                  "not a user of this store" if account is None else
                  "deactivated" if account.status == UserStatus.DEACTIVATED else
                  "no e-mail address")
        if reason is not None:
            report["skipped"].append({**message.summary(), "reason": reason})
            return
        assert account is not None and account.email is not None
        address = account.email
        if dry_run:
            report["would_send"].append(message.summary(address))
            return
        assert mailer is not None
        try:
            mailer.send(Mail(to=address, subject=message.subject,
                             body=f"Hello {plain_text(account.full_name)},\n\n{message.body}"))
        except MailFailure as exc:
            report["failed"].append({**message.summary(address), "error": str(exc)})
            return
        reminder = Reminder.sent(kind=message.kind, record=message.record,
                                 action=message.action, occasion=message.occasion,
                                 recipient=message.user, address=address,
                                 threshold=message.threshold, subject=message.subject,
                                 as_of=day.isoformat())
        try:
            core.persist(reminder)
        except Conflict:
            # Another run recorded the same reminder first: it is sent, and recorded once.
            report["already_sent"] += 1
            return
        report["sent"].append(message.summary(address))

    # -- what is due -------------------------------------------------------------------------

    def _due(self, day: dt.date, due_soon_days: int, escalate_after_days: int,
             people: _People) -> Iterator[_Message]:
        core = self.core
        horizon = (day + dt.timedelta(days=due_soon_days)).isoformat()
        for ref in core.read_models.reminder_candidates(horizon):
            ca = core.load(CorrectiveAction, ref)
            if ca.status in ("closed", "cancelled"):
                continue
            for item in ca.items:
                if item["state"] == "open":
                    yield from _item_messages(ca, item, day, due_soon_days,
                                              escalate_after_days, people)
            if ca.status == "implemented":
                yield from _verification_messages(ca, people)


def _item_messages(ca: CorrectiveAction, item: ActionItem, day: dt.date, due_soon_days: int,
                   escalate_after_days: int, people: _People) -> Iterator[_Message]:
    due = dt.date.fromisoformat(str(item["due"]))
    left = (due - day).days
    number, assignee = str(item["number"]), str(item["assignee"])
    what = one_line(str(item["text"]))
    facts = _facts(ca, item, people)
    if 0 <= left <= due_soon_days:
        when = "today" if left == 0 else "tomorrow" if left == 1 else f"in {left} days"
        yield _Message(
            ReminderKind.DUE_SOON.value, ca.ref, number, due.isoformat(),
            f"due within {due_soon_days} days", assignee,
            f"[capa] Due {when}: {ca.ref} {number} {what}",
            f"Action {number} of corrective action {ca.ref} is due {when}, on {due}.\n\n{facts}"
            f"\nWhen it is done: capa ca complete {ca.ref} {number} --note TEXT\n"
            f"{_footer(f'due within {due_soon_days} days')}")
        return
    if left >= 0:
        return
    late = -left
    days = "1 day" if late == 1 else f"{late} days"
    for user in dict.fromkeys((assignee, ca.owner)):
        yield _Message(
            ReminderKind.OVERDUE.value, ca.ref, number, due.isoformat(), "overdue", user,
            f"[capa] Overdue by {days}: {ca.ref} {number} {what}",
            f"Action {number} of corrective action {ca.ref} was due on {due} and is overdue by "
            f"{days}.\n\n{facts}\nComplete it (capa ca complete), or ask quality for an "
            f"extension with a reason (capa ca extend).\n{_footer('overdue')}")
    if late >= escalate_after_days:
        threshold = f"overdue {escalate_after_days} days or more"
        for user in people.quality():
            yield _Message(
                ReminderKind.ESCALATION.value, ca.ref, number, due.isoformat(), threshold, user,
                f"[capa] Escalation: {ca.ref} {number} overdue by {days}: {what}",
                f"Escalation to quality: action {number} of corrective action {ca.ref} was due "
                f"on {due} and is overdue by {days}.\n\n{facts}\n"
                f"{_footer(threshold)}")


def _verification_messages(ca: CorrectiveAction, people: _People) -> Iterator[_Message]:
    done = max((str(i["completed_at"]) for i in ca.items if i.get("completed_at")), default="")
    occasion = f"iteration-{ca.iteration}-{done}"
    title = one_line(ca.title)
    for user in people.quality():
        yield _Message(
            ReminderKind.AWAITING_VERIFICATION.value, ca.ref, None, occasion,
            "implemented", user,
            f"[capa] Awaiting verification: {ca.ref} {title}",
            f"Every action of corrective action {ca.ref} is done (last one on {done[:10]}); "
            f"its effectiveness awaits verification by someone who implemented none of them "
            f"(R3).\n\nCorrective action: {ca.ref}: {plain_text(ca.title)}\n"
            f"Owner: {people.name(ca.owner)}\nIteration: {ca.iteration}\n\n"
            f"To verify: capa ca verify {ca.ref} (--effective | --not-effective) --note TEXT\n"
            f"{_footer('implemented, awaiting verification')}")


def _facts(ca: CorrectiveAction, item: ActionItem, people: _People) -> str:
    return (f"Corrective action: {ca.ref}: {plain_text(ca.title)}\n"
            f"Owner: {people.name(ca.owner)}\n"
            f"Action {item['number']}: {plain_text(str(item['text']))}\n"
            f"Assignee: {people.name(str(item['assignee']))}\n"
            f"Due: {item['due']}\n\n"
            f"To see the record: capa ca show {ca.ref}\n")


def _footer(threshold: str) -> str:
    return (f"\nThis message is sent once for this threshold ({threshold}); capa records "
            "that it was sent.\n-- capa\n")


class _People:
    """The store's accounts, each read from its events once per run."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self._accounts: dict[str, User | None] = {}
        self._quality: list[str] | None = None

    def get(self, user: str) -> User | None:
        if user not in self._accounts:
            self._accounts[user] = self.core.find_user(user)
        return self._accounts[user]

    def name(self, user: str) -> str:
        account = self.get(user)
        return f"{plain_text(account.full_name)} ({user})" if account is not None else user

    def quality(self) -> list[str]:
        """Every active account holding the quality role, in user id order."""
        if self._quality is None:
            found = []
            core = self.core
            for item in core.recorder.select_notifications(start=None, limit=1_000_000,
                                                           topics=[_USER_ADDED_TOPIC]):
                added: Any = core.mapper.to_domain_event(item)
                account = self.get(str(added.user_id))
                if account is not None and "quality" in account.roles \
                        and account.status != UserStatus.DEACTIVATED:
                    found.append(account.user_id)
            self._quality = sorted(found)
        return self._quality
