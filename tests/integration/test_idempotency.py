"""`Idempotency-Key` on the server's writes (SPEC §11), on both back ends: a retried request gets
the first answer and never writes twice, a key reused for another request is refused and
writes nothing, a server killed mid-write and restarted writes each retried request at most
once, and the command line re-sends its key when a connection drops."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import socket
import threading
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from capa.adapters.idempotency import Claim, KeyTaken
from capa.domain.errors import Conflict
from capa.server.idempotency import Keys
from tests.support.backends import (
    ADMIN,
    ENGINEER,
    PASSWORD,
    REPORTER,
    audit_verify,
    close_all,
    create_store,
    event_count,
    query,
    run_cli,
)
from tests.support.server import Server, free_port, kill, serving, start, stop

RAISE = "/v1/nonconformities/raise_nc"


def burr(i: int) -> dict[str, Any]:
    return {"title": f"Burr {i}", "description": "Seen at goods-in", "source": "supplier",
            "severity": "minor"}


@pytest.fixture
def server(store_target: str, tmp_path: Path) -> Iterator[Server]:
    close_all([create_store(store_target)])
    with serving(store_target, tmp_path) as running:
        yield running


def keyed(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


def test_a_retried_write_gets_the_first_answer_and_writes_once(server: Server) -> None:
    before = event_count(server.target)
    first = server.post(RAISE, burr(1), user=REPORTER, headers=keyed("raise-burr-1"))
    assert first[0] == 200 and first[1]["status"] == "open"
    again = server.post(RAISE, burr(1), user=REPORTER, headers=keyed("raise-burr-1"))
    assert again == first
    assert event_count(server.target) == before + 1
    # The key is the user's own: another user's request with the same key is its own write.
    other = server.post(RAISE, burr(1), user=ENGINEER, headers=keyed("raise-burr-1"))
    assert other[0] == 200 and other[1]["id"] != first[1]["id"]
    # Without a key nothing is remembered: the same body is a second NC.
    plain = server.post(RAISE, burr(1), user=REPORTER)
    assert plain[0] == 200 and plain[1]["id"] not in (first[1]["id"], other[1]["id"])
    assert event_count(server.target) == before + 3


def test_a_key_reused_for_another_request_is_refused_and_writes_nothing(
        server: Server) -> None:
    first = server.post(RAISE, burr(1), user=REPORTER, headers=keyed("k-1"))
    assert first[0] == 200
    before = event_count(server.target)
    for path, body in [(RAISE, burr(2)),
                       ("/v1/nonconformities/contain_nc", {"ref": first[1]["id"],
                                                           "action": "Quarantined"})]:
        status, answer = server.post(path, body, user=REPORTER, headers=keyed("k-1"))
        assert (status, answer["error"]["code"]) == (422, 2), answer
        assert "Idempotency-Key" in answer["error"]["message"]
    # A key that cannot be one is refused before anything runs.
    for bad in ("x" * 201, "tab\there", "clé"):
        status, answer = server.post(RAISE, burr(3), user=REPORTER, headers=keyed(bad))
        assert (status, answer["error"]["code"]) == (422, 2), (bad, answer)
    assert event_count(server.target) == before


def test_a_refused_request_leaves_its_key_unused(server: Server) -> None:
    raised = server.post(RAISE, burr(1), user=REPORTER)[1]["id"]
    before = event_count(server.target)
    refused = server.post("/v1/nonconformities/close_nc", {"ref": raised}, user=ENGINEER,
                          headers=keyed("close-it"))
    assert (refused[0], refused[1]["error"]["rule"]) == (409, "R7")
    assert query(server.target, "SELECT COUNT(*) FROM capa_idempotency")[0][0] == 0
    # Once the rule is met, the same key does the write.
    assessed = server.post("/v1/nonconformities/assess_nc",
                           {"ref": raised, "impact": 1, "likelihood": 1, "capa_required": False,
                            "rationale": "Cosmetic"}, user=ENGINEER)
    assert assessed[0] == 200
    closed = server.post("/v1/nonconformities/close_nc", {"ref": raised}, user=ENGINEER,
                         password=PASSWORD, headers=keyed("close-it"))
    assert closed[0] == 200 and closed[1]["status"] == "closed"
    assert event_count(server.target) == before + 2


def test_a_key_committed_without_its_answer_is_answered_from_the_store(
        server: Server) -> None:
    first = server.post(RAISE, burr(1), user=REPORTER, headers=keyed("lost-answer"))
    assert first[0] == 200
    # As if the server had stopped between committing the events and keeping the answer.
    query(server.target, "UPDATE capa_idempotency SET response = NULL")
    before = event_count(server.target)
    again = server.post(RAISE, burr(1), user=REPORTER, headers=keyed("lost-answer"))
    assert again[0] == 200
    assert {k: again[1][k] for k in ("id", "status", "version")} == \
        {k: first[1][k] for k in ("id", "status", "version")}
    assert event_count(server.target) == before


def test_a_retry_while_the_first_request_runs_is_told_to_retry(store_target: str) -> None:
    store = create_store(store_target)
    try:
        keys = Keys(store)

        def raise_nc() -> Any:
            with pytest.raises(Conflict):  # the same key, while this request still runs
                keys.run(REPORTER, "k", RAISE, burr(1), lambda: None)
            return store.nonconformities.raise_nc(**burr(1)).as_dict()

        with store.acting_as(REPORTER, PASSWORD):
            answer = keys.run(REPORTER, "k", RAISE, burr(1), raise_nc)
            assert keys.run(REPORTER, "k", RAISE, burr(1), lambda: 1 / 0) == answer
        # An answer that carries a secret is not kept: its retry is answered from the store.
        with store.acting_as(REPORTER, PASSWORD):
            given = keys.run(REPORTER, "t", RAISE, burr(3), lambda: {
                **store.nonconformities.raise_nc(**burr(3)).as_dict(), "token": "s3cret"})
            again = keys.run(REPORTER, "t", RAISE, burr(3), lambda: 1 / 0)
        assert given["token"] == "s3cret" and "token" not in again
        assert again == {k: given[k] for k in ("id", "status", "version")}
        assert "s3cret" not in repr(query(store_target, "SELECT * FROM capa_idempotency"))
        # A save with a key another request committed writes nothing of its own.
        before = event_count(store_target)
        with store.acting_as(REPORTER, PASSWORD), \
                store.claiming(Claim(REPORTER, "k", RAISE, "another")), \
                pytest.raises(KeyTaken, match="capa_idempotency"):
            store.nonconformities.raise_nc(**burr(2))
        assert event_count(store_target) == before
    finally:
        close_all([store])


# -- a server killed mid-write ----------------------------------------------------------------


def _post(server_url: str, body: dict[str, Any], key: str) -> tuple[int, Any] | None:
    """One attempt; None when the server went away before answering."""
    probe = Server(server_url, "", None, Path())  # type: ignore[arg-type]
    try:
        return probe.post(RAISE, body, user=REPORTER, headers=keyed(key))
    except (urllib.error.URLError, ConnectionError, OSError):
        return None


def test_requests_retried_after_the_server_was_killed_write_exactly_once(
        store_target: str, tmp_path: Path) -> None:
    close_all([create_store(store_target)])
    before = event_count(store_target)
    port = free_port()
    server = start(store_target, tmp_path, port=port)
    wanted = {f"kill-{i:02d}": burr(i) for i in range(40)}
    answered: dict[str, Any] = {}
    enough = threading.Event()

    def fire(key: str) -> None:
        got = _post(server.url, wanted[key], key)
        if got is not None and got[0] == 200:
            answered[key] = got[1]
            if len(answered) >= 10:
                enough.set()

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(fire, key) for key in wanted]
        assert enough.wait(120), "the server answered fewer than 10 writes"
        kill(server)  # SIGKILL, requests still in flight and queued
        concurrent.futures.wait(futures)
    assert 10 <= len(answered) < len(wanted), "the kill came after every write"

    server = start(store_target, tmp_path, port=port)
    try:
        for key, body in wanted.items():
            got = _post(server.url, body, key)
            assert got is not None and got[0] == 200, (key, got)
            if key in answered:
                assert got[1] == answered[key], key
            answered[key] = got[1]
    finally:
        stop(server)

    # Each intended write exists exactly once, numbered without gaps.
    year = dt.datetime.now(dt.UTC).year
    assert event_count(store_target) == before + len(wanted)
    ids = sorted(a["id"] for a in answered.values())
    assert ids == [f"NC-{year}-{n:04d}" for n in range(1, len(wanted) + 1)]
    listed = run_cli(store_target, ADMIN, ["nc", "list"], cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = __import__("json").loads(listed.stdout)
    assert sorted(r["title"] for r in rows) == sorted(b["title"] for b in wanted.values())
    assert {r["id"]: r["title"] for r in rows} == \
        {answered[k]["id"]: wanted[k]["title"] for k in wanted}
    verified = audit_verify(store_target, tmp_path)
    assert verified is not None and verified.returncode == 0, verified.stdout + verified.stderr


# -- the command line re-sends its key --------------------------------------------------------


class _DroppingProxy:
    """A loopback TCP proxy that forwards the first write to the server and then drops the
    connection before the answer reaches the client (or, `unavailable`, answers it 503 itself
    as a proxy does while the server restarts); every later request passes."""

    def __init__(self, upstream_port: int, *, unavailable: bool = False) -> None:
        self.upstream = upstream_port
        self.unavailable = unavailable
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.keys: list[str] = []  # of each raise_nc request
        self.dropped = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with client:
                request = self._read_request(client)
                for line in request.split(b"\r\n"):
                    if line.lower().startswith(b"idempotency-key:") and b"raise_nc" in request:
                        self.keys.append(line.split(b":", 1)[1].strip().decode())
                first_write = request.startswith(b"POST") and b"raise_nc" in request and \
                    not self.dropped
                if first_write and self.unavailable:
                    self.dropped += 1
                    client.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                   b"Connection: close\r\n\r\n")
                    continue
                with socket.create_connection(("127.0.0.1", self.upstream)) as up:
                    up.sendall(request)
                    answer = b""
                    while chunk := up.recv(65536):
                        answer += chunk
                if first_write:
                    self.dropped += 1
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                      b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    continue  # a reset, and no answer
                client.sendall(answer)

    @staticmethod
    def _read_request(client: socket.socket) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            data += client.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        while len(body) < length:
            body += client.recv(65536)
        return head + b"\r\n\r\n" + body

    def close(self) -> None:
        self.listener.close()


@pytest.mark.parametrize("unavailable", [False, True], ids=["dropped", "proxy-503"])
def test_the_cli_resends_its_key_when_the_connection_drops(server: Server,
                                                           unavailable: bool) -> None:
    proxy = _DroppingProxy(int(server.url.rsplit(":", 1)[1]), unavailable=unavailable)
    try:
        before = event_count(server.target)
        raised = server.cli("--json", "nc", "raise", "--title", "Burr", "--description", "Seen",
                            "--source", "supplier", "--severity", "minor", user=REPORTER,
                            CAPA_DB=f"http://127.0.0.1:{proxy.port}")
        assert raised.code == 0, raised.stderr
        assert proxy.dropped == 1
        assert event_count(server.target) == before + 1
        write_keys = proxy.keys[-2:]
        assert len(write_keys) == 2 and write_keys[0] == write_keys[1]
        # The next command is a new request: a new key.
        again = server.cli("--json", "nc", "raise", "--title", "Burr", "--description", "Seen",
                           "--source", "supplier", "--severity", "minor", user=REPORTER,
                           CAPA_DB=f"http://127.0.0.1:{proxy.port}")
        assert again.code == 0 and again.json()["id"] != raised.json()["id"]
        assert proxy.keys[-1] != write_keys[0]
        assert event_count(server.target) == before + 2
    finally:
        proxy.close()


def test_keyed_saves_keep_working_after_keyed_saves_that_failed(store_target: str) -> None:
    """A save that loses a race rolls back with its key; the saves after it, on the same
    connections, still commit theirs (psycopg must not believe a statement prepared in a
    failed pipeline)."""
    from eventsourcing.persistence import IntegrityError

    from capa.domain.nonconformity import Nonconformity

    store = create_store(store_target)
    store.idempotency_keys.create()
    try:
        with store.acting_as(REPORTER, PASSWORD):
            ref = store.nonconformities.raise_nc(**burr(1)).id
            store.nonconformities.contain_nc(ref, action="Quarantined")
            # psycopg prepares a statement on its sixth run: runs of keyed saves that won and
            # lost, so that its sixth run on the store's connection is one that lost.
            won = 0
            for n, outcome in enumerate("LWWWWWLWWLWWWWWWLWW" * 2):
                if outcome == "L":
                    stale: Any = store.load(Nonconformity, ref, version=1)
                    stale.contain("Again", "none", None)
                    with store.claiming(Claim(REPORTER, f"lost-{n}", RAISE, "x")), \
                            pytest.raises(IntegrityError):
                        store.save(stale)
                    continue
                with store.claiming(Claim(REPORTER, f"won-{n}", RAISE, "x")) as claim:
                    store.nonconformities.contain_nc(ref, action=f"Sorted {n}")
                assert claim.committed
                won += 1
        assert query(store_target, "SELECT COUNT(*) FROM capa_idempotency")[0][0] == won
    finally:
        close_all([store])


def test_a_keyed_password_change_keeps_no_hash_of_either_password(
        server: Server, store_target: str) -> None:
    """The fingerprint of a keyed request leaves out every argument its operation declares
    secret: the store holds no fast hash of a password (SPEC §2, §9.3), whatever the argument
    is called (`current` and `new` here)."""
    import hashlib
    import json

    new = "a-brand-new-secret-for-today-9"
    status, _ = server.post("/v1/identity/change_password", {"current": PASSWORD, "new": new},
                            user=ENGINEER, headers=keyed("change-it"))
    assert status == 200
    stored = query(store_target, "SELECT fingerprint, response FROM capa_idempotency")
    assert stored, "the keyed write kept its key"
    guesses = set()
    for arguments in ({"current": PASSWORD, "new": new}, {"current": PASSWORD},
                      {"new": new}):
        text = json.dumps({"operation": "/v1/identity/change_password",
                           "arguments": arguments}, sort_keys=True, separators=(",", ":"))
        guesses.add(hashlib.sha256(text.encode()).hexdigest())
    for fingerprint, response in stored:
        assert fingerprint not in guesses
        assert PASSWORD not in str(response) and new not in str(response)
    # A retry is still recognised as the same request, and writes nothing.
    before = event_count(store_target)
    again, _ = server.post("/v1/identity/change_password", {"current": PASSWORD, "new": new},
                           user=ENGINEER, password=new, headers=keyed("change-it"))
    assert again == 200 and event_count(store_target) == before
