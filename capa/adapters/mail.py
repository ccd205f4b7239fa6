"""Sending mail: the port `capa notify` sends its reminders through, and its SMTP adapter
(standard library `smtplib` and `email.message`).

    mailer = smtp_mailer("smtps://capa:secret@mail.example.com", sender="capa@example.com")
    mailer.send(Mail(to="jchen@example.com", subject="…", body="…"))
    mailer.close()

The server is named by a URL (`CAPA_SMTP_URL`):

    smtp://host[:port]                  plain SMTP (port 25)
    smtp://host:587?starttls=yes        STARTTLS before anything is sent (also smtp+starttls://)
    smtps://host[:port]                 SMTP over TLS from the start (port 465)
    smtp://user:password@host:port      AUTH with that user and password (percent-encoded)

The password is used to log in and never appears in a message, an error or the output.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from capa.domain.errors import InvalidInput

__all__ = ["Mail", "MailFailure", "Mailer", "SmtpMailer", "SmtpServer", "parse_smtp_url",
           "smtp_mailer"]

#: Seconds to wait for the server on connecting and on each reply.
TIMEOUT = 30.0
_YES = {"1", "yes", "true", "on"}
_POLICY = policy.SMTP.clone(max_line_length=998)


@dataclass(frozen=True)
class Mail:
    """One plain-text message to one address. The subject must already be one line."""

    to: str
    subject: str
    body: str


class MailFailure(Exception):
    """A message the server did not accept; the text names no secret."""


class Mailer(Protocol):
    """What sends mail (the port); tests may give their own."""

    def send(self, mail: Mail) -> None:
        """Hand one message to the server, or raise MailFailure."""

    def close(self) -> None:
        """End the connection, if any."""


@dataclass(frozen=True)
class SmtpServer:
    """Where and how to connect, as `parse_smtp_url` reads it."""

    host: str
    port: int
    tls: bool
    starttls: bool
    user: str | None
    password: str | None

    def display(self) -> str:
        """The server as a person may see it: never the password."""
        scheme = "smtps" if self.tls else "smtp"
        who = f"{self.user}@" if self.user else ""
        return f"{scheme}://{who}{self.host}:{self.port}"


def parse_smtp_url(url: str) -> SmtpServer:
    """The server a `CAPA_SMTP_URL` names, or InvalidInput saying what is wrong (without the
    password)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise InvalidInput("CAPA_SMTP_URL is not a URL of the form smtp://host:port") from None
    scheme = parts.scheme.lower()
    if scheme not in ("smtp", "smtps", "smtp+starttls") or not parts.hostname:
        raise InvalidInput("CAPA_SMTP_URL must be smtp://host[:port], smtp+starttls://… or "
                           "smtps://host[:port], optionally with user:password@")
    options = {k.lower(): v[-1].lower() for k, v in parse_qs(parts.query).items()}
    unknown = sorted(set(options) - {"starttls"})
    if unknown:
        raise InvalidInput(f"CAPA_SMTP_URL has an unknown option: {unknown[0]} (known: "
                           "starttls)")
    tls = scheme == "smtps"
    starttls = scheme == "smtp+starttls" or options.get("starttls", "") in _YES
    if tls and starttls:
        raise InvalidInput("CAPA_SMTP_URL: smtps:// is TLS already; STARTTLS is for smtp://")
    default = 465 if tls else 587 if starttls else 25
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    return SmtpServer(host=parts.hostname, port=port or default, tls=tls, starttls=starttls,
                      user=user, password=password)


def smtp_mailer(url: str, *, sender: str) -> SmtpMailer:
    return SmtpMailer(parse_smtp_url(url), sender=sender)


class SmtpMailer:
    """Sends through one SMTP connection, opened on the first message and reused. Once the
    server cannot be reached, every later message fails at once with the same reason, so a
    run against a server that is down ends quickly."""

    def __init__(self, server: SmtpServer, *, sender: str) -> None:
        self.server = server
        self.sender = sender
        self._smtp: smtplib.SMTP | None = None
        self._unreachable: str | None = None

    def send(self, mail: Mail) -> None:
        message = self._message(mail)
        smtp = self._connection()
        try:
            # The envelope names the one recipient: no header decides who receives it.
            refused = smtp.send_message(message, from_addr=self.sender, to_addrs=[mail.to])
        except smtplib.SMTPServerDisconnected as exc:
            self._smtp = None
            raise MailFailure(f"the mail server closed the connection ({_reason(exc)})") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise MailFailure(f"the mail server did not accept it ({_reason(exc)})") from None
        if refused:
            raise MailFailure("the mail server refused the recipient")

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                self._smtp.close()
            self._smtp = None

    def _message(self, mail: Mail) -> EmailMessage:
        for value in (mail.to, mail.subject, self.sender):
            if "\r" in value or "\n" in value:
                # The service makes every header value one line; this is the last guard.
                raise MailFailure("a header value holds a line break; the message was not sent")
        # Folded only past RFC 5322's line limit: a subject folded just after "Subject:" reads
        # back with a leading space in some clients.
        message = EmailMessage(policy=_POLICY)
        message["From"] = self.sender
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2] or "capa")
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(mail.body)
        return message

    def _connection(self) -> smtplib.SMTP:
        if self._unreachable is not None:
            raise MailFailure(self._unreachable)
        if self._smtp is not None:
            return self._smtp
        server = self.server
        try:
            if server.tls:
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(server.host, server.port, timeout=TIMEOUT,
                                                      context=ssl.create_default_context())
            else:
                smtp = smtplib.SMTP(server.host, server.port, timeout=TIMEOUT)
            if server.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if server.user is not None:
                smtp.login(server.user, server.password or "")
        except smtplib.SMTPAuthenticationError:
            self._unreachable = (f"the mail server {server.display()} refused the login of "
                                 f"{server.user}")
            raise MailFailure(self._unreachable) from None
        except (smtplib.SMTPException, OSError) as exc:
            self._unreachable = (f"could not reach the mail server {server.display()} "
                                 f"({_reason(exc)})")
            raise MailFailure(self._unreachable) from None
        self._smtp = smtp
        return smtp


def _reason(exc: BaseException) -> str:
    # smtplib's errors carry the server's reply, never the password it was given.
    text = " ".join(str(exc).split())[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
