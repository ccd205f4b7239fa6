"""`Idempotency-Key` on the server's writes (SPEC §11): a retried request never writes twice.

A key is the caller's (up to 200 printable characters) and belongs to the user who sends it.
The first request with a key runs; if it writes, its key is committed with its events
(capa.adapters.idempotency) and its answer kept. A request with a key already used:

- for the same operation and body: gets the first request's answer again, and writes nothing;
- for another operation or body: is refused (422, code 2), and writes nothing;
- while the first request is still running in this server: 409 with `retry: true`.

A request that wrote nothing (a read, a refusal) leaves no key behind: retried, it runs again,
which is what a retry of it means. An answer that carries a secret (a token, a password) is
never kept: a retry of that request gets the written record's id, status and version.

In several server processes on one store a second request racing the first collides on the key
when it commits, and its events are rolled back.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from capa.adapters.idempotency import Claim, KeptRequest, KeyTaken
from capa.app.application import CapaApplication
from capa.domain.errors import Conflict, InvalidInput

HEADER = "Idempotency-Key"
MAX_KEY = 200
#: Words of an answer's field names that mark a secret the store must not keep a copy of.
_SECRET_WORDS = ("token", "password", "secret")


def checked_key(value: str | None) -> str | None:
    """The key a request sent, or None; InvalidInput for one that cannot be a key."""
    if value is None:
        return None
    if not 1 <= len(value) <= MAX_KEY or not value.isprintable() or not value.isascii():
        raise InvalidInput(f"{HEADER} must be 1 to {MAX_KEY} printable ASCII characters")
    return value


def fingerprint(operation: str, arguments: dict[str, Any]) -> str:
    """The request a key stands for. The caller leaves out the arguments its operation declares
    secret (capa.server.operations); any other named like a secret is left out here too, so the
    store never keeps a fast hash of a password or a token."""
    kept = {k: v for k, v in arguments.items()
            if k not in ("password", "token", "secret") and not k.endswith("password")}
    text = json.dumps({"operation": operation, "arguments": kept}, sort_keys=True,
                      separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Keys:
    """The keys of one server process: those in flight here, and the store's table."""

    def __init__(self, store: CapaApplication) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._running: dict[tuple[str, str], str] = {}
        store.idempotency_keys.create()

    @contextmanager
    def _running_here(self, user: str, key: str, print_: str) -> Iterator[None]:
        with self._lock:
            running = self._running.get((user, key))
            if running is None:
                self._running[(user, key)] = print_
        if running is not None:
            _same_request(running, print_)
            raise Conflict(f"a request with this {HEADER} is still running; retry it once it "
                           "has answered")
        try:
            yield
        finally:
            with self._lock:
                del self._running[(user, key)]

    def run(self, user: str, key: str, operation: str, arguments: dict[str, Any],
            perform: Callable[[], Any]) -> Any:
        """The answer of `perform()` run at most once for this user and key."""
        print_ = fingerprint(operation, arguments)
        with self._running_here(user, key, print_):
            kept = self._store.idempotency_keys.find(user, key)
            if kept is not None:
                return self._replay(kept, print_)
            with self._store.claiming(Claim(user, key, operation, print_)) as claim:
                try:
                    answer = perform()
                except KeyTaken:
                    # Another server process committed the same key first.
                    found = self._store.idempotency_keys.find(user, key)
                    if found is None:
                        raise Conflict(f"a request with this {HEADER} is still running; "
                                       "retry it once it has answered") from None
                    return self._replay(found, print_)
            if claim.committed and not _carries_secret(answer):
                self._store.idempotency_keys.answer(user, key, answer)
            return answer

    def _replay(self, kept: KeptRequest, print_: str) -> Any:
        _same_request(kept.fingerprint, print_)
        if kept.response is not None:
            return kept.response
        # The server stopped after the events were committed and before the answer was kept.
        return self._store.written_result(kept.records)


def _carries_secret(answer: Any) -> bool:
    if isinstance(answer, dict):
        return any(any(word in str(k).lower() for word in _SECRET_WORDS) or _carries_secret(v)
                   for k, v in answer.items())
    if isinstance(answer, list):
        return any(_carries_secret(v) for v in answer)
    return False


def _same_request(first: str, again: str) -> None:
    if first != again:
        raise InvalidInput(f"this {HEADER} was used for another request; send a new key for "
                           "a new request")
