"""A webhook receiver for the tests: a real HTTP server (`http.server`) on a loopback port,
answering each POST with the next status it is given (then 200) and keeping what it got."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support.mailbox import free_port


@dataclass
class Received:
    path: str
    #: By lower-case name (HTTP header names are case-insensitive).
    headers: dict[str, str]
    body: bytes
    #: The header names as sent.
    names: list[str] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.body)

    def verifies(self, secret: str) -> bool:
        """The receiver's check of X-Capa-Signature, as docs/server.md gives it."""
        stamp = self.headers["x-capa-timestamp"]
        expected = "sha256=" + hmac.new(secret.encode("ascii"),
                                        stamp.encode("ascii") + b"." + self.body,
                                        hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, self.headers["x-capa-signature"])


@dataclass
class Receiver:
    port: int
    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)

    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/capa/events"


@contextmanager
def running_receiver(*statuses: int, port: int | None = None, delay: float = 0,
                     tls: Path | None = None) -> Iterator[Receiver]:
    """A receiver on 127.0.0.1 for the duration of the block: it answers the given statuses
    in turn, then 200, each after `delay` seconds; over HTTPS with `tls`, a folder where
    `self_signed` put its certificate and key."""
    receiver = Receiver(port or free_port(), list(statuses))
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                receiver.received.append(Received(
                    self.path, {k.lower(): v for k, v in self.headers.items()}, body,
                    list(self.headers.keys())))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
            time.sleep(delay)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", receiver.port), Handler)
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls / "cert.pem", tls / "key.pem")
        server.socket = context.wrap_socket(server.socket, server_side=True)
        receiver.scheme = "https"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def self_signed(folder: Path) -> Path:
    """A self-signed certificate for 127.0.0.1 (`cert.pem`, `key.pem`) in `folder`."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "erp.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return folder
