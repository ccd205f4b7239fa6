"""The command line as a client of `capa serve` (SPEC §11): `--db http(s)://host:port`.

`RemoteApplication` stands where the opened store stands for every other command: its services
have the application's methods, each one a `POST /v1/<service>/<method>` (capa.server.operations),
their results the JSON the server sends (what `--json` prints anyway), and a refusal the same
error, with the same exit code, as the store would give. The client holds no database
credential and no key: it sends the user's password (CAPA_USER/CAPA_PASSWORD, as HTTP Basic) or
the token of a `capa login` session against the server, with the password again to sign, or a
service account's API token (CAPA_TOKEN). Only the standard library's HTTP client is used, so
the command line loads nothing more for it.

Every request carries a fresh `Idempotency-Key`. When the connection fails before an answer
arrives (refused, reset, dropped, or a proxy's 502/503/504), the same request is sent again
with the same key, a few times: the server writes it at most once and gives a retry the first
answer, so a command retried this way never writes twice.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from capa.domain.errors import (
    EXIT_CODES,
    CapaError,
    Conflict,
    InvalidInput,
    NotFound,
    RuleViolation,
)

#: Exit code -> the error the server's refusal stands for (the inverse of EXIT_CODES).
_ERRORS: dict[int, type[CapaError]] = {code: kind for kind, code in EXIT_CODES.items()}
#: How long a request may take before the client gives up (a signature's password check is
#: memory-hard on purpose, and a dashboard of a large store takes seconds).
TIMEOUT_SECONDS = 300
#: Waits before each new attempt of a request whose connection failed (then it gives up).
RETRY_WAITS = (0.5, 1.0, 2.0)
#: Answers that come from a proxy in front of a server that is not there (yet).
_PROXY_STATUSES = frozenset({502, 503, 504})


def is_server(target: str) -> bool:
    return target.startswith(("http://", "https://"))


class RemoteApplication:
    """The services of a store behind `capa serve`, for the command line."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self._user: str | None = None
        self._password: str | None = None
        self._session: tuple[str, str] | None = None
        self._token: str | None = None
        self._signatures: dict[str, list[str]] | None = None

    def __getattr__(self, name: str) -> Any:
        if name in _services():
            return _RemoteService(self, name)
        raise InvalidInput(f"this command works on a store, not through a server ({self.url}); "
                           "run it where the store is, with --db naming it")

    @contextmanager
    def acting_as(self, user: str, password: str | None = None) -> Iterator[None]:
        self._user, self._password = user, password
        try:
            yield
        finally:
            self._user = self._password = None

    def close(self) -> None:
        """Nothing to close: every request is its own connection."""

    def health(self) -> dict[str, Any]:
        return dict(self._send("GET", "/health", None, {}))

    def call(self, service: str, method: str, arguments: dict[str, Any]) -> Any:
        from capa.server.operations import decode

        headers: dict[str, str] = {}
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token}"
        elif self._session is not None:
            user, token = self._session
            headers["Authorization"] = f"Bearer {user}:{token}"
            if self._password:
                headers["X-Capa-Password"] = self._password
        elif self._user and self._password:
            pair = f"{self._user}:{self._password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        headers["Idempotency-Key"] = uuid.uuid4().hex
        result = decode(self._send_retrying(f"/v1/{service}/{method}", arguments, headers))
        if (service, method) == ("identity", "resume_session"):
            # The session stands for the user from now on: its token goes with each request.
            self._session = (str(arguments["user"]), str(arguments["token"]))
        elif (service, method) == ("service_accounts", "resume_token"):
            # A service account's API token (CAPA_TOKEN) likewise.
            self._token = str(arguments["token"])
        return result

    def _send_retrying(self, path: str, body: Any, headers: dict[str, str]) -> Any:
        """POST with the request's key, sent again (same key) while the connection fails."""
        resent = False
        for wait in RETRY_WAITS:
            try:
                return self._send("POST", path, body, headers, retryable=True)
            except _Unanswered:
                resent = True
            except Conflict:
                # Sent again after a drop, the first attempt may still be running there.
                if not resent:
                    raise
            time.sleep(wait)
        return self._send("POST", path, body, headers)

    def _send(self, verb: str, path: str, body: Any, headers: dict[str, str], *,
              retryable: bool = False) -> Any:
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(self.url + path, data=data, method=verb,
                                         headers={"Content-Type": "application/json",
                                                  "Accept": "application/json", **headers})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            if retryable and exc.code in _PROXY_STATUSES:
                raise _Unanswered from None
            raise _refusal(exc, self.url) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            if retryable and isinstance(reason, ConnectionError):
                raise _Unanswered from None
            raise NotFound(f"cannot reach the capa server at {self.url}: {reason}") from None


class _Unanswered(Exception):  # noqa: N818 - what happened to the request
    """The connection failed before an answer came: the request may be sent again."""


class _RemoteService:
    def __init__(self, app: RemoteApplication, name: str) -> None:
        self._app = app
        self._name = name

    def __getattr__(self, method: str) -> Callable[..., Any]:
        names = _services()[self._name].get(method)
        if names is None:
            raise InvalidInput(f"{self._name}.{method} is not offered by the server "
                               f"({self._app.url}); run this command where the store is")

        def call(*args: Any, **kwargs: Any) -> Any:
            arguments = dict(zip(names, args, strict=False))
            arguments.update(kwargs)
            return self._app.call(self._name, method, _wire(arguments))

        return call


def _services() -> dict[str, dict[str, list[str]]]:
    """Service -> method -> its parameter names, of every operation the server offers."""
    found: dict[str, dict[str, list[str]]] | None = _OFFERED.get("all")
    if found is None:
        from capa.server.operations import offered

        found = {}
        for op in offered():
            found.setdefault(op.service, {})[op.method] = [p.name for p in op.parameters()]
        _OFFERED["all"] = found
    return found


_OFFERED: dict[str, dict[str, dict[str, list[str]]]] = {}


def _wire(arguments: dict[str, Any]) -> dict[str, Any]:
    """Arguments as JSON: a password asked for on demand is asked now, a tuple is a list, and
    evidence files travel as their bytes."""
    from capa.server.operations import FILE_ARGUMENTS, SERVER_ARGUMENTS

    out: dict[str, Any] = {}
    for key, value in arguments.items():
        if key in SERVER_ARGUMENTS:
            continue  # the server's own settings (its mail server), never the client's
        if callable(value):
            value = value()
        if key in FILE_ARGUMENTS:
            value = [{"name": Path(v).name,
                      "content_b64": base64.b64encode(Path(v).read_bytes()).decode("ascii")}
                     for v in value]
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, Path):
            value = str(value)
        out[key] = value
    return out


def _refusal(exc: urllib.error.HTTPError, url: str) -> CapaError:
    try:
        error = json.loads(exc.read() or b"{}").get("error") or {}
    except ValueError:
        error = {}
    code, message, rule = error.get("code"), error.get("message"), error.get("rule")
    if not isinstance(code, int) or not isinstance(message, str):
        return NotFound(f"{url} answered HTTP {exc.code}, not as a capa server")
    rule = rule if isinstance(rule, str) and rule else None
    if rule is not None:
        message = message.removeprefix(f"refused ({rule}): ")
    if code == 1:
        return RuleViolation(rule, message) if rule is not None else CapaError(message)
    return _ERRORS.get(code, CapaError)(message, rule)
