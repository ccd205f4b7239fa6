"""Outgoing webhooks without a store: which events and addresses a subscription takes, the
secret's derivation, the signature scheme as docs/server.md gives it to receivers, and the
back-off."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from capa.adapters.webhooks import signature, webhook_key, webhook_secret
from capa.app.webhooks import DeliverySettings
from capa.domain.errors import InvalidInput
from capa.domain.webhook import EVENT_TYPES, event_type_of, valid_events, valid_url

SERVER_DOC = Path(__file__).resolve().parents[2] / "docs" / "server.md"


def _section() -> str:
    text = SERVER_DOC.read_text(encoding="utf-8")
    return text.split("## Outgoing webhooks", 1)[1].split("\n## ", 1)[0]


def test_the_event_types_are_named_after_the_record_events_and_all_documented() -> None:
    assert {"nc.raised", "nc.closed", "ca.opened", "ca.closed",
            "ca.effectiveness_verified"} <= set(EVENT_TYPES)
    assert all(re.fullmatch(r"(nc|ca)\.[a-z_]+", name) for name in EVENT_TYPES)
    documented = set(re.findall(r"`((?:nc|ca)\.[a-z_]+)`", _section()))
    assert documented == set(EVENT_TYPES)
    assert event_type_of(EVENT_TYPES["nc.raised"]) == "nc.raised"
    assert event_type_of("capa.domain.user:User.UserAdded") is None


def test_the_receivers_check_in_the_docs_verifies_capas_signature() -> None:
    snippet = re.search(r"```python\n(.*?)```", _section(), flags=re.S)
    assert snippet is not None
    scope: dict[str, Any] = {}
    exec(snippet.group(1), scope)  # noqa: S102 - the documented code itself
    verify = scope["verify"]
    secret = webhook_secret(bytes(32), "WEBHOOK-1")
    body = b'{"event":"nc.raised","record":"NC-2026-0001"}'
    stamp = str(int(time.time()))
    headers = {"x-capa-timestamp": stamp, "x-capa-signature": signature(secret, stamp, body)}
    assert verify(secret, headers, body)
    assert not verify(secret, headers, body.replace(b"raised", b"closed"))
    assert not verify(webhook_secret(bytes(32), "WEBHOOK-2"), headers, body)
    old = str(int(time.time()) - 3600)
    assert not verify(secret, {"x-capa-timestamp": old,
                               "x-capa-signature": signature(secret, old, body)}, body)


def test_each_webhook_has_its_own_secret_from_the_key(tmp_path: Path) -> None:
    key = webhook_key(tmp_path / "hooks.key", create=True)
    assert webhook_key(tmp_path / "hooks.key", create=False) == key
    assert (tmp_path / "hooks.key").stat().st_mode & 0o777 == 0o600
    first = webhook_secret(key, "WEBHOOK-1")
    assert first == webhook_secret(key, "WEBHOOK-1") != webhook_secret(key, "WEBHOOK-2")
    assert re.fullmatch(r"[0-9a-f]{64}", first)
    assert first != webhook_secret(bytes(32), "WEBHOOK-1")
    with pytest.raises(InvalidInput, match="no webhook key"):
        webhook_key(tmp_path / "missing.key", create=False)
    (tmp_path / "bad.key").write_text("not hex")
    with pytest.raises(InvalidInput, match="cannot be read"):
        webhook_key(tmp_path / "bad.key", create=False)


@pytest.mark.parametrize("url", ["https://erp.example/capa", "http://127.0.0.1:8080/in?x=1",
                                 "HTTPS://ERP.EXAMPLE", "http://[::1]:9/hook"])
def test_an_http_address_is_taken(url: str) -> None:
    assert valid_url(f"  {url} ") == url


@pytest.mark.parametrize("url", ["", "ftp://erp.example", "file:///etc/passwd", "erp.example",
                                 "https://", "https://u:p@erp.example", "https://u@erp.example",
                                 "https://erp.example/#x", "https://erp.example/a b",
                                 "https://erp.example/\r\nX: y", "https://erp.example:70000/",
                                 "javascript:alert(1)", "https://erp.example/" + "a" * 2000])
def test_anything_else_is_refused(url: str) -> None:
    with pytest.raises(InvalidInput):
        valid_url(url)


def test_events_are_known_or_wildcards_and_kept_once() -> None:
    assert valid_events(["NC.Raised", "nc.raised", "ca.*", "*"]) == ["nc.raised", "ca.*", "*"]
    for wrong in (["nc.exploded"], ["user.added"], ["nc"], [], [" "]):
        with pytest.raises(InvalidInput):
            valid_events(wrong)


def test_the_back_off_doubles_up_to_its_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = DeliverySettings(attempts=8, backoff=30, max_backoff=100)
    assert [settings.delay(n) for n in (1, 2, 3, 4)] == [30, 60, 100, 100]
    monkeypatch.setenv("CAPA_WEBHOOK_BACKOFF", "2")
    monkeypatch.setenv("CAPA_WEBHOOK_ATTEMPTS", "3")
    read = DeliverySettings.from_environment()
    assert (read.backoff, read.attempts, read.timeout) == (2, 3, 10)
    monkeypatch.setenv("CAPA_WEBHOOK_ATTEMPTS", "0")
    with pytest.raises(InvalidInput, match="CAPA_WEBHOOK_ATTEMPTS"):
        DeliverySettings.from_environment()
    monkeypatch.setenv("CAPA_WEBHOOK_ATTEMPTS", "many")
    with pytest.raises(InvalidInput, match="a number"):
        DeliverySettings.from_environment()
