"""Steps of features/communication/other_systems.feature: webhooks delivered to a real HTTP
receiver on a loopback port (tests/support/receiver.py), standing for the plant's ERP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_bdd import given, parsers, then, when

from tests.bdd.world import World, raise_default_nc
from tests.support.receiver import Receiver, running_receiver


@pytest.fixture
def erp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Receiver]:
    """The ERP's receiving end; the scenario's webhook key in its own folder, and no wait
    between attempts."""
    monkeypatch.setenv("CAPA_WEBHOOK_KEY", str(tmp_path / "webhook.key"))
    monkeypatch.setenv("CAPA_WEBHOOK_BACKOFF", "0")
    with running_receiver() as receiver:
        yield receiver


@pytest.fixture
def subscription() -> dict[str, Any]:
    """The webhook the scenario added, with the secret it was given."""
    return {}


@given(parsers.parse('the ERP of "{organisation}" is listening'))
def the_erp_listens(erp: Receiver, organisation: str) -> None:
    assert erp.received == []


@given(parsers.parse('"{user}" subscribed the ERP to raised nonconformities'))
def subscribed(world: World, erp: Receiver, subscription: dict[str, Any], user: str) -> None:
    subscription.update(world.act(user, lambda app: app.webhooks.add(
        erp.url, events=["nc.raised"], reason="The ERP holds the lots of raised NCs")))


@given("the ERP will fail the next request")
def the_erp_fails(erp: Receiver) -> None:
    erp.statuses.append(503)


@when(parsers.parse('"{user}" subscribes the address "{url}" to raised nonconformities'))
def subscribes(world: World, erp: Receiver, user: str, url: str) -> None:
    world.attempt(user, lambda app: app.webhooks.add(url, events=["nc.raised"]))


@when(parsers.parse('a nonconformity "{alias}" is raised at final inspection'))
def raised(world: World, alias: str) -> None:
    raise_default_nc(world, alias)


@when(parsers.parse('"{user}" sends the events that are due to other systems'))
def sends(world: World, user: str) -> None:
    world.act(user, lambda app: app.webhooks.deliver())


@then(parsers.parse('the ERP received the raising of "{alias}" {count:d} time, signed with the '
                    'secret it was given'))
@then(parsers.parse('the ERP received the raising of "{alias}" {count:d} times, signed with the '
                    'secret it was given'))
def received(world: World, erp: Receiver, subscription: dict[str, Any], alias: str,
             count: int) -> None:
    assert len(erp.received) == count
    for request in erp.received:
        assert request.verifies(subscription["secret"])
        body = request.json()
        assert (body["event"], body["record"]) == ("nc.raised", world.ref(alias))


@then(parsers.parse('the delivery to the ERP is recorded as delivered after {count:d} attempt'))
@then(parsers.parse('the delivery to the ERP is recorded as delivered after {count:d} attempts'))
def recorded(world: World, subscription: dict[str, Any], count: int) -> None:
    [delivery] = world.act("admin", lambda app: app.webhooks.deliveries(subscription["id"]))
    assert (delivery["status"], delivery["attempts"]) == ("delivered", count)


@then(parsers.parse('once "{user}" sends the events that are due, the ERP has received nothing'))
def nothing_sent(world: World, erp: Receiver, user: str) -> None:
    world.act(user, lambda app: app.webhooks.deliver())
    assert erp.received == []
