"""E-mail addresses of accounts and the reminder record (capa.domain): no I/O."""

from __future__ import annotations

import pytest

from capa.adapters.mail import parse_smtp_url
from capa.app.notifications import one_line, plain_text
from capa.domain.errors import InvalidInput
from capa.domain.reminder import Reminder, reminder_ref
from capa.domain.user import User
from capa.domain.values import valid_email


@pytest.mark.parametrize("given, kept", [
    ("qa@Example.COM", "qa@example.com"),
    (" a.b+c@x.co.uk ", "a.b+c@x.co.uk"),
    ("O'Brien@example.ie", "O'Brien@example.ie"),
])
def test_an_address_is_kept_with_its_domain_in_lower_case(given: str, kept: str) -> None:
    assert valid_email(given) == kept


@pytest.mark.parametrize("hostile", [
    "a@x.com\r\nBcc: b@y.com", "a@x.com\n", "a\r@x.com", "a@x.com\x00", "a@x.com\x85",
    "A <a@x.com>", "a@x.com, b@y.com", "a@b", "a..b@x.com", ".a@x.com", "a@-x.com",
    "a@x.com.", "ä@x.com", "a@x.1com", "", "@x.com", "a@", "a" * 250 + "@x.com",
])
def test_anything_but_one_plain_address_is_refused(hostile: str) -> None:
    with pytest.raises(InvalidInput):
        valid_email(hostile)


def test_an_account_of_an_earlier_release_has_no_address_until_one_is_set() -> None:
    user = User.add(user_id="lnguyen", full_name="Linh Nguyen", roles=["owner"],
                    credential="sha256:00")
    assert user.email is None and "email" not in user.fields()
    user.set_email("lnguyen@northwind.example")
    assert user.email == "lnguyen@northwind.example"
    assert type(user.pending_events[-1]).__name__ == "EmailAddressChanged"
    with pytest.raises(InvalidInput, match="already"):
        user.set_email("lnguyen@NORTHWIND.example")
    with pytest.raises(InvalidInput):
        user.set_email("lnguyen@northwind.example\r\nBcc: x@y.example")
    assert user.email == "lnguyen@northwind.example"


def test_a_reminder_is_named_by_what_makes_it_one_message() -> None:
    sent = Reminder.sent(kind="overdue", record="CA-2026-0001", action="A1",
                         occasion="2026-12-01", recipient="lnguyen",
                         address="lnguyen@northwind.example", threshold="overdue",
                         subject="s", as_of="2026-12-03")
    assert sent.ref == reminder_ref("overdue", "CA-2026-0001", "A1", "2026-12-01", "lnguyen")
    # Another due date (an extension) or another person is another message.
    assert sent.ref != reminder_ref("overdue", "CA-2026-0001", "A1", "2026-12-09", "lnguyen")
    assert sent.ref != reminder_ref("overdue", "CA-2026-0001", "A1", "2026-12-01", "apatel")
    with pytest.raises(ValueError):
        Reminder.sent(kind="gossip", record="CA-2026-0001", action=None, occasion="x",
                      recipient="u", address="u@x.example", threshold="t", subject="s",
                      as_of="2026-12-03")


def test_user_text_becomes_one_header_line_and_a_plain_body() -> None:
    assert one_line("Sort lot\r\nBcc: x@y.example\u2028X: 1\tend") == \
        "Sort lot Bcc: x@y.example X: 1 end"
    assert len(one_line("word " * 40)) == 60 and one_line("word " * 40).endswith("…")
    assert plain_text("a\r\nb\rc\x1b[31m\x07d") == "a\nb\nc[31md"


@pytest.mark.parametrize("url, where", [
    ("smtp://mail.example.com", ("mail.example.com", 25, False, False, None)),
    ("smtp://mail.example.com:587?starttls=yes", ("mail.example.com", 587, False, True, None)),
    ("smtp+starttls://mail.example.com", ("mail.example.com", 587, False, True, None)),
    ("smtps://capa:p%40ss@mail.example.com", ("mail.example.com", 465, True, False, "capa")),
])
def test_the_mail_server_url(url: str, where: tuple[object, ...]) -> None:
    server = parse_smtp_url(url)
    assert (server.host, server.port, server.tls, server.starttls, server.user) == where
    assert "p@ss" not in server.display() and "%40" not in server.display()


@pytest.mark.parametrize("url", ["http://x.example", "smtp://", "smtp://x.example?tls=1",
                                 "smtps://x.example?starttls=yes", "smtp://x.example:99999"])
def test_a_mail_server_url_capa_cannot_use_is_refused(url: str) -> None:
    with pytest.raises(InvalidInput):
        parse_smtp_url(url)
