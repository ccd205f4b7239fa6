"""Outgoing webhooks from a real `capa serve` (SPEC §11): a webhook added through the server
(the secret derived there, from the server's key), record events raised through the server
delivered by its dispatcher, a failed attempt retried and recorded, and a restarted server
resuming where it stopped, sending each delivery once."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from capa.app.store import open_store
from tests.support.backends import ADMIN, PASSWORD, REPORTER, close_all, create_store
from tests.support.cli import Outcome, run_capa
from tests.support.receiver import running_receiver
from tests.support.server import serving


@contextmanager
def serving_webhooks(target: str, folder: Path, **env: str) -> Iterator[str]:
    """`capa serve --webhooks-every 0.2 --webhooks-as ADMIN` until the block ends; its URL."""
    with serving(target, folder, "--webhooks-every", "0.2", "--webhooks-as", ADMIN,
                 CAPA_PASSWORD=PASSWORD, **env) as server:
        yield server.url


def client(url: str, folder: Path, *args: str, user: str = ADMIN) -> Outcome:
    (folder / "client").mkdir(exist_ok=True)
    outcome = run_capa(args, env={"CAPA_DB": url, "CAPA_USER": user, "CAPA_PASSWORD": PASSWORD,
                                  "CAPA_SESSION_DIR": str(folder / "client" / "session"),
                                  "CAPA_KEY": None, "CAPA_CHECKPOINTS": None,
                                  "CAPA_WEBHOOK_KEY": None, "CAPA_DEBUG": None},
                       cwd=folder / "client")
    assert "Traceback" not in outcome.stdout + outcome.stderr
    return outcome


def wait_for(condition: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def raise_nc(url: str, folder: Path, title: str) -> str:
    outcome = client(url, folder, "--json", "nc", "raise", "--title", title, "--description",
                     "Seen at incoming inspection", "--source", "supplier", "--severity",
                     "minor", user=REPORTER)
    assert outcome.code == 0, outcome.stderr
    return str(outcome.json()["id"])


@pytest.mark.sqlite_only("the dispatcher follows the log the same way on both back ends")
def test_the_server_delivers_retries_and_resumes_after_a_restart(store_target: str,
                                                                 tmp_path: Path) -> None:
    close_all([create_store(store_target)])
    key = tmp_path / "server" / "webhook.key"
    key.parent.mkdir()
    env = {"CAPA_WEBHOOK_KEY": str(key), "CAPA_WEBHOOK_BACKOFF": "0.2"}
    with running_receiver(500) as receiver:
        with serving_webhooks(store_target, key.parent, **env) as url:
            added = client(url, tmp_path, "--json", "webhook", "add", receiver.url, "--event",
                           "nc.raised", "--reason", "ERP follows NCs")
            assert added.code == 0, added.stderr
            secret = added.json()["secret"]
            assert key.is_file() and not (tmp_path / "client" / "webhook.key").exists()
            first = raise_nc(url, tmp_path, "Burr on flange")
            wait_for(lambda: len(receiver.received) == 2)
            wait_for(lambda: client(url, tmp_path, "--json", "webhook", "deliveries"
                                    ).json()[0]["status"] == "delivered")
        # The server is down: an NC raised meanwhile is sent once it is back.
        app = open_store(store_target)
        try:
            with app.acting_as(REPORTER, PASSWORD):
                second = app.nonconformities.raise_nc(title="Scratch", description="Seen",
                                                      source="supplier", severity="minor").id
        finally:
            app.close()
        with serving_webhooks(store_target, key.parent, **env) as url:
            wait_for(lambda: len(receiver.received) == 3)
            time.sleep(1)  # several more passes
            [one, two] = client(url, tmp_path, "--json", "webhook", "deliveries").json()
    assert len(receiver.received) == 3, "each delivery sent once after the restart"
    assert [r.json()["record"] for r in receiver.received] == [first, first, second]
    assert all(r.verifies(secret) for r in receiver.received)
    assert (one["record"], one["attempts"], one["status"]) == (first, 2, "delivered")
    assert (two["record"], two["attempts"], two["status"]) == (second, 1, "delivered")
