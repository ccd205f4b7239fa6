"""A real SMTP server on a free loopback port (aiosmtpd), for the reminder tests.

    with running_mailbox() as box:
        env = {"CAPA_SMTP_URL": box.url}
        ...
        [message] = box.to("lnguyen@northwind.example")
        message["Subject"], message.get_content()

Every message the server accepts is kept with its envelope, parsed with the standard library's
e-mail parser. `box.refuse(address)` makes the server refuse that recipient (550), as a mail
server does for a mailbox that does not exist.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class Received:
    """One message as the server received it: envelope sender and recipients, and the message."""

    sender: str
    recipients: list[str]
    message: EmailMessage
    raw: bytes

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def body(self) -> str:
        return str(self.message.get_content())


@dataclass
class Mailbox:
    """What the server has received so far, and the recipients it refuses."""

    host: str
    port: int
    received: list[Received] = field(default_factory=list)
    refused: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def refuse(self, address: str) -> None:
        self.refused.add(address.lower())

    def messages(self) -> list[Received]:
        with self.lock:
            return list(self.received)

    def to(self, address: str) -> list[Received]:
        """The messages whose envelope names `address`."""
        return [m for m in self.messages() if address in m.recipients]

    def clear(self) -> None:
        with self.lock:
            self.received.clear()

    # -- aiosmtpd's handler hooks -------------------------------------------------------------

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: Any) -> str:
        if address.lower() in self.refused:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = bytes(envelope.original_content or envelope.content)
        parsed = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(parsed, EmailMessage)
        with self.lock:
            self.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos),
                                          parsed, raw))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_mailbox() -> Iterator[Mailbox]:
    """An SMTP server on 127.0.0.1 for the duration of the block."""
    box = Mailbox("127.0.0.1", free_port())
    controller = Controller(box, hostname=box.host, port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()
