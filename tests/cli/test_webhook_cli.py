"""`capa webhook` through the command line, against a real HTTP receiver on a loopback port
(tests/support/receiver.py): subscriptions refused when malformed, deliveries signed with the
secret shown once, retried after a failure and recorded, hostile text sent as JSON data, and
the secret kept out of the store and its export."""

from __future__ import annotations

import zipfile
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.mailbox import free_port
from tests.support.receiver import Receiver, running_receiver

if TYPE_CHECKING:
    from conftest import Capa

HOSTILE = 'Crack "}, "event": "ca.closed", "x": "</script><script>alert(1)</script> \u202e ü'


def add(capa: Capa, url: str, *events: str) -> dict[str, Any]:
    options = [part for event in events or ("nc.*",) for part in ("--event", event)]
    return capa.write("webhook", "add", url, *options, "--reason", "ERP follows NCs")


def deliver(capa: Capa, *args: str, code: int = 0, **env: str | None) -> dict[str, Any]:
    env.setdefault("CAPA_WEBHOOK_BACKOFF", "0")
    outcome = capa.run("--json", "webhook", "deliver", *args, **env)
    assert outcome.code == code, (outcome.stdout, outcome.stderr)
    report: dict[str, Any] = outcome.json()
    return report


def deliveries(capa: Capa, *args: str) -> list[dict[str, Any]]:
    outcome = capa.run("--json", "webhook", "deliveries", *args)
    assert outcome.code == 0, outcome.stderr
    found: list[dict[str, Any]] = outcome.json()
    return found


@pytest.fixture
def receiver() -> Any:
    with running_receiver() as running:
        yield running


# -- subscriptions ---------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "events", "says"), [
    ("ftp://erp.example/in", ["nc.raised"], "http:// or https://"),
    ("erp.example/in", ["nc.raised"], "http:// or https://"),
    ("https://svc:hunter2@erp.example/in", ["nc.raised"], "user name or password"),
    ("https://erp.example/in two", ["nc.raised"], "without spaces"),
    ("https://erp.example:99999/in", ["nc.raised"], "not a valid address"),
    ("https://erp.example/in", ["nc.exploded"], "unknown event type"),
    ("https://erp.example/in", ["user.added"], "unknown event type"),
])
def test_a_malformed_subscription_is_refused_and_writes_nothing(
        capa: Capa, url: str, events: list[str], says: str) -> None:
    options = [part for event in events for part in ("--event", event)]
    error = capa.refused("webhook", "add", url, *options, code=2, user=capa.quality_manager)
    assert says in error["message"]
    assert "\n" not in error["message"]
    assert "hunter2" not in error["message"]
    assert capa.run("--json", "webhook", "list").json() == []


def test_a_subscription_needs_an_event(capa: Capa) -> None:
    before = capa.events()
    outcome = capa.run("webhook", "add", "https://erp.example/in")
    assert outcome.code == 2
    assert "--event" in outcome.stderr
    assert capa.events() == before


def test_webhooks_are_added_listed_and_removed_with_a_reason(capa: Capa) -> None:
    first = add(capa, "https://erp.example/capa", "nc.raised", "ca.closed")
    assert first["id"] == "WEBHOOK-1" and first["status"] == "active"
    assert len(first["secret"]) == 64
    second = add(capa, "http://complaints.example:8080/hook", "*")
    assert second["id"] == "WEBHOOK-2" and second["secret"] != first["secret"]
    listed = capa.run("--json", "webhook", "list", user=capa.verifier).json()
    assert [(w["id"], w["url"], w["events"]) for w in listed] == [
        ("WEBHOOK-1", "https://erp.example/capa", ["nc.raised", "ca.closed"]),
        ("WEBHOOK-2", "http://complaints.example:8080/hook", ["*"])]
    assert all("secret" not in w for w in listed)
    removed = capa.write("webhook", "remove", "WEBHOOK-1", "--reason", "ERP replaced")
    assert removed["status"] == "removed"
    capa.refused("webhook", "remove", "WEBHOOK-1", "--reason", "Again", code=1, rule="R7")
    capa.refused("webhook", "remove", "WEBHOOK-9", "--reason", "Unknown", code=3)
    trail = capa.run("--json", "history", "WEBHOOK-1").json()
    assert [(e["event_type"], e["actor"], e["reason"]) for e in trail] == [
        ("WebhookAdded", capa.quality_manager, "ERP follows NCs"),
        ("WebhookRemoved", capa.quality_manager, "ERP replaced")]
    human = capa.run("webhook", "list")
    assert "WEBHOOK-1  removed" in human.stdout and "WEBHOOK-2  active" in human.stdout


# -- deliveries ------------------------------------------------------------------------------


def test_a_record_event_is_posted_signed_with_the_secret_and_recorded(
        capa: Capa, receiver: Receiver) -> None:
    hook = add(capa, receiver.url, "nc.raised", "ca.opened")
    nc = capa.nc(HOSTILE)
    capa.write("nc", "contain", nc, "--action", "Lot held", user=capa.reporter)  # not wanted
    report = deliver(capa)
    assert [d["record"] for d in report["delivered"]] == [nc]
    assert len(receiver.received) == 1
    got = receiver.received[0]
    assert got.verifies(hook["secret"])
    assert not got.verifies("0" * 64)
    assert got.headers["x-capa-event"] == "nc.raised"
    assert got.headers["x-capa-delivery"] == report["delivered"][0]["delivery"]
    assert got.headers["content-type"] == "application/json"
    assert {"X-Capa-Event", "X-Capa-Delivery", "X-Capa-Timestamp",
            "X-Capa-Signature"} <= set(got.names)
    body = got.json()
    assert body["event"] == "nc.raised" and body["record"] == nc and body["version"] == 1
    assert body["actor"] == capa.reporter and body["kind"] == "nonconformity"
    assert body["time"].endswith("Z")
    # Hostile text is data: the receiver reads back exactly what was typed.
    assert body["summary"]["title"] == HOSTILE
    assert b"</script>" in got.body and got.body.isascii()
    assert hook["secret"].encode() not in got.body
    assert b"argon2" not in got.body and b"password" not in got.body
    [recorded] = deliveries(capa)
    assert (recorded["status"], recorded["attempts"], recorded["http_status"]) == (
        "delivered", 1, 200)
    # Delivered once: the next pass has nothing to send.
    again = deliver(capa)
    assert again["delivered"] == [] and len(receiver.received) == 1


def test_a_receiver_that_fails_gets_it_again_and_every_attempt_is_recorded(capa: Capa) -> None:
    with running_receiver(500, 503) as receiver:
        add(capa, receiver.url, "nc.raised")
        nc = capa.nc()
        first = deliver(capa, code=5)
        assert [(d["record"], d["http_status"], d["attempts"]) for d in first["failed"]] == [
            (nc, 500, 1)]
        [failed] = deliveries(capa, "WEBHOOK-1", "--failed")
        assert failed["status"] == "failed" and failed["error"] == "HTTP 500 Internal Server Error"
        deliver(capa, code=5)
        done = deliver(capa)
        assert [d["attempts"] for d in done["delivered"]] == [3]
    assert [r.headers["x-capa-delivery"] for r in receiver.received] == [
        failed["delivery"]] * 3
    assert deliveries(capa, "--failed") == []
    history = capa.run("--json", "export", "--format", "jsonl").stdout.splitlines()
    kinds = [line for line in history if "WebhookDelivery." in line]
    assert [k.split('"type": "')[1].split('"')[0] for k in kinds] == [
        "WebhookDelivery.DeliveryScheduled", "WebhookDelivery.DeliveryAttemptFailed",
        "WebhookDelivery.DeliveryAttemptFailed", "WebhookDelivery.Delivered"]


def test_a_receiver_that_is_down_gets_its_deliveries_in_order_once_it_is_up(capa: Capa) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/capa/events"
    add(capa, url, "nc.raised")
    first = capa.nc("First")
    report = deliver(capa, code=5, CAPA_WEBHOOK_BACKOFF="3600")
    assert [d["record"] for d in report["failed"]] == [first]
    assert "Connection refused" in report["failed"][0]["error"]
    second = capa.nc("Second")
    # The failed one waits out its back-off, and the later event waits behind it.
    waiting = deliver(capa, CAPA_WEBHOOK_BACKOFF="3600")
    assert waiting["delivered"] == [] and waiting["failed"] == [] and waiting["waiting"] == 2
    listed = capa.run("webhook", "deliveries", "--failed")
    assert first in listed.stdout and "Connection refused" in listed.stdout
    with running_receiver(port=port) as receiver:
        # Past its back-off (or told to try again now) it goes, then the next in order.
        done = deliver(capa, "--retry-failed", CAPA_WEBHOOK_BACKOFF="3600")
        assert [d["record"] for d in done["delivered"]] == [first, second]
    assert [r.json()["record"] for r in receiver.received] == [first, second]
    assert deliveries(capa, "--failed") == []


def test_a_refused_command_sends_nothing(capa: Capa, receiver: Receiver) -> None:
    add(capa, receiver.url, "*")
    nc = capa.nc()
    deliver(capa)
    assert len(receiver.received) == 1
    capa.refused("nc", "close", nc, code=4, user=capa.reporter)
    capa.refused("nc", "raise", "--title", "T", "--description", "D", "--source", "process",
                 "--severity", "minor", code=4, user=capa.owner)
    capa.refused("nc", "assess", nc, "--impact", "9", "--likelihood", "1", "--capa-required",
                 code=2)
    report = deliver(capa)
    assert report["delivered"] == [] and len(receiver.received) == 1


def test_a_removed_webhook_is_sent_nothing_more(capa: Capa, receiver: Receiver) -> None:
    add(capa, receiver.url, "nc.*")
    capa.nc()
    deliver(capa)
    capa.write("webhook", "remove", "1", "--reason", "ERP replaced")
    capa.nc()
    assert deliver(capa)["delivered"] == []
    assert len(receiver.received) == 1
    assert len(deliveries(capa)) == 1


def test_events_before_the_subscription_are_not_sent(capa: Capa, receiver: Receiver) -> None:
    capa.nc("Before")
    add(capa, receiver.url, "nc.raised")
    after = capa.nc("After")
    dry = deliver(capa, "--dry-run")
    assert [d["record"] for d in dry["would_send"]] == [after]
    assert receiver.received == [] and deliveries(capa) == []
    assert [d["record"] for d in deliver(capa)["delivered"]] == [after]


@pytest.mark.sqlite_only("reads the store's own file bytes")
def test_the_secret_is_in_neither_the_store_nor_its_exports(capa: Capa,
                                                          receiver: Receiver) -> None:
    hook = add(capa, receiver.url, "nc.raised")
    capa.nc()
    deliver(capa)
    secret = hook["secret"].encode()
    stored = b"".join(p.read_bytes() for p in capa.folder.iterdir()
                      if p.name.startswith(capa.db.name) and not p.name.endswith("webhook-key"))
    assert secret not in stored and secret.hex().encode() not in stored
    exported = capa.run("export", "--format", "jsonl")
    assert exported.code == 0 and hook["secret"] not in exported.stdout
    bundle = capa.run("audit", "export", "--out", "bundle.zip")
    assert bundle.code == 0, bundle.stderr
    with zipfile.ZipFile(capa.folder / "bundle.zip") as zipped:
        assert not any(secret in zipped.read(name) for name in zipped.namelist())
    assert receiver.received[0].verifies(hook["secret"])
    key = capa.folder / f"{capa.db.name}.webhook-key"
    assert key.stat().st_mode & 0o777 == 0o600
    assert capa.run("audit", "verify").code == 0


def test_a_redirect_or_a_receiver_that_never_answers_is_a_failed_attempt(capa: Capa) -> None:
    import socket

    with running_receiver(302) as receiver:
        add(capa, receiver.url, "nc.raised")
        capa.nc()
        [moved] = deliver(capa, code=5)["failed"]
    assert moved["http_status"] == 302 and len(receiver.received) == 1
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)  # accepts connections, never answers
        capa.write("webhook", "remove", "WEBHOOK-1", "--reason", "Moved")
        add(capa, f"http://127.0.0.1:{silent.getsockname()[1]}/in", "nc.raised")
        capa.nc()
        [hung] = deliver(capa, code=5, CAPA_WEBHOOK_TIMEOUT="0.5")["failed"]
    assert hung["http_status"] is None and "timed out" in hung["error"]


@pytest.mark.sqlite_only("the server's options do not depend on the back end")
def test_the_servers_dispatcher_needs_an_account_that_may_deliver(capa: Capa) -> None:
    alone = capa.run("serve", "--webhooks-every", "5")
    assert alone.code == 2 and "go together" in alone.stderr
    reporter = capa.run("serve", "--port", str(free_port()), "--webhooks-every", "5",
                        "--webhooks-as", capa.reporter)
    assert reporter.code == 4 and "may not webhook deliver" in reporter.stderr
    wrong = capa.run("serve", "--port", str(free_port()), "--webhooks-every", "5",
                     "--webhooks-as", capa.quality_manager, CAPA_PASSWORD="not-the-password")
    assert wrong.code == 4


@pytest.mark.sqlite_only("TLS does not depend on the back end")
def test_https_receivers_have_their_certificate_checked(capa: Capa) -> None:
    from tests.support.receiver import self_signed

    tls = self_signed(capa.folder)
    with running_receiver(tls=tls) as receiver:
        hook = add(capa, receiver.url, "nc.raised")
        capa.nc()
        [refused] = deliver(capa, code=5)["failed"]
        assert "CERTIFICATE_VERIFY_FAILED" in refused["error"] and receiver.received == []
        # Trusted (here through OpenSSL's SSL_CERT_FILE), it is delivered.
        [done] = deliver(capa, "--retry-failed", SSL_CERT_FILE=str(tls / "cert.pem"))[
            "delivered"]
    assert done["attempts"] == 2 and receiver.received[0].verifies(hook["secret"])


def test_a_delivery_whose_attempts_are_used_up_stays_failed_and_holds_nothing_up(
        capa: Capa) -> None:
    with running_receiver(500) as receiver:
        add(capa, receiver.url, "nc.raised")
        first = capa.nc("First")
        [given_up] = deliver(capa, code=5, CAPA_WEBHOOK_ATTEMPTS="1")["failed"]
        assert given_up["next_attempt_at"] is None
        second = capa.nc("Second")
        report = deliver(capa, CAPA_WEBHOOK_ATTEMPTS="1")
        assert [d["record"] for d in report["delivered"]] == [second]
        assert [d["record"] for d in deliveries(capa, "--failed")] == [first]
        retried = deliver(capa, "--retry-failed", CAPA_WEBHOOK_ATTEMPTS="1")
        assert [(d["record"], d["attempts"]) for d in retried["delivered"]] == [(first, 2)]
    assert [r.json()["record"] for r in receiver.received] == [first, second, first]
