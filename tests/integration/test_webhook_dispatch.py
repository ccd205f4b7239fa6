"""Two dispatchers on one store (a server's and a cron job's `capa webhook deliver`) send each
new delivery once: the second one's record of it collides with the first's in the event store,
and a delivery recorded without an outcome is left to the dispatcher sending it."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from capa.app.store import open_store
from tests.support.backends import ADMIN, PASSWORD, REPORTER, close_all, create_store
from tests.support.receiver import running_receiver


@pytest.mark.sqlite_only("the collision is the event store's on both back ends")
def test_two_dispatchers_racing_send_each_event_once(store_target: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAPA_WEBHOOK_KEY", str(tmp_path / "webhook.key"))
    app = create_store(store_target)
    with running_receiver(delay=0.2) as receiver:
        with app.acting_as(ADMIN, PASSWORD):
            app.webhooks.add(receiver.url, events=["nc.raised"])
        with app.acting_as(REPORTER, PASSWORD):
            raised = [app.nonconformities.raise_nc(title=f"Burr {n}", description="Seen",
                                                   source="supplier", severity="minor").id
                      for n in range(4)]
        others = [open_store(store_target) for _ in range(2)]
        reports: list[dict[str, Any]] = []
        failures: list[BaseException] = []

        def dispatch(store: Any) -> None:
            try:
                with store.acting_as(ADMIN, PASSWORD):
                    reports.append(store.webhooks.deliver())
            except BaseException as exc:  # noqa: BLE001 - reported below
                failures.append(exc)

        threads = [threading.Thread(target=dispatch, args=(store,)) for store in others]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert failures == []
        # A pass after both: nothing left to send, nothing sent twice.
        with app.acting_as(ADMIN, PASSWORD):
            assert app.webhooks.deliver()["delivered"] == []
            recorded = app.webhooks.deliveries()
        close_all([app, *others])
    sent = [r.json()["record"] for r in receiver.received]
    assert sorted(sent) == sorted(raised), "each event sent once"
    assert sum(len(r["delivered"]) for r in reports) == len(raised)
    assert [(d["record"], d["status"], d["attempts"]) for d in recorded] == [
        (ref, "delivered", 1) for ref in raised]


@pytest.mark.sqlite_only("the recovery reads the log the same way on both back ends")
def test_a_delivery_abandoned_mid_send_is_sent_again_once_that_send_is_over(
        store_target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from capa.app.webhooks import DeliverySettings
    from capa.domain.webhook import WebhookDelivery

    monkeypatch.setenv("CAPA_WEBHOOK_KEY", str(tmp_path / "webhook.key"))
    app = create_store(store_target)
    with running_receiver() as receiver:
        with app.acting_as(ADMIN, PASSWORD):
            app.webhooks.add(receiver.url, events=["nc.raised"])
        with app.acting_as(REPORTER, PASSWORD):
            nc = app.nonconformities.raise_nc(title="Burr", description="Seen",
                                              source="supplier", severity="minor").id
            later = app.nonconformities.raise_nc(title="Scratch", description="Seen",
                                                 source="supplier", severity="minor").id
        position = app.recorder.max_notification_id() - 1
        with app.acting_as(ADMIN, PASSWORD):
            # A dispatcher recorded the delivery, then stopped before it had an answer.
            app.persist(WebhookDelivery.schedule(webhook="WEBHOOK-1", position=position,
                                                 event_type="nc.raised", record=nc,
                                                 record_version=1))
            held = app.webhooks.deliver()
            assert (held["delivered"], held["waiting"]) == ([], 2)
            monkeypatch.setattr(DeliverySettings, "in_flight", property(lambda s: 0.0))
            sent = app.webhooks.deliver()
        close_all([app])
    assert [d["record"] for d in sent["delivered"]] == [nc, later]
    assert [r.json()["record"] for r in receiver.received] == [nc, later]
