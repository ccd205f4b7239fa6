"""Users' signing keys at rest (SPEC §9.2): only the right password opens a wrapped key, and a
wrapped key opens only for the user and key id it was made for."""

from __future__ import annotations

import pytest

from capa.app import keyring
from capa.audit.signatures import manifest_bytes
from capa.domain.errors import NotPermitted

PASSWORD = "correct-horse-battery-staple"


def test_the_right_password_opens_the_key() -> None:
    key = keyring.new_key()
    kid = keyring.key_id(keyring.public_key_b64(key))
    wrapped = keyring.wrap(key, PASSWORD, "jchen")
    opened = keyring.unwrap(wrapped, PASSWORD, "jchen", kid)
    assert keyring.public_key_b64(opened) == keyring.public_key_b64(key)
    # Neither the password nor the raw key is in what is stored.
    assert PASSWORD not in wrapped and keyring.public_key_b64(key) not in wrapped


@pytest.mark.parametrize(("password", "user", "kid_of_other"), [
    ("wrong-password-1", "jchen", False),
    (PASSWORD, "mhernandez", False),  # a row copied to another user
    (PASSWORD, "jchen", True),        # a row that names another key
])
def test_anything_else_is_refused(password: str, user: str, kid_of_other: bool) -> None:
    key = keyring.new_key()
    kid = keyring.key_id(keyring.public_key_b64(keyring.new_key() if kid_of_other else key))
    wrapped = keyring.wrap(key, PASSWORD, "jchen")
    with pytest.raises(NotPermitted):
        keyring.unwrap(wrapped, password, user, kid)


def test_a_damaged_row_is_refused() -> None:
    with pytest.raises(NotPermitted):
        keyring.unwrap("aesgcm-scrypt$1$2$3$x$y$z", PASSWORD, "jchen", "0" * 16)


def test_the_manifest_is_canonical_and_binds_every_part() -> None:
    parts = {"record": "CA-2026-0001", "version": 4, "content_sha256": "ab" * 32,
             "meaning": "approval", "signed_at": "2026-06-01T10:00:00.000000Z",
             "user_id": "nthu", "full_name": "Nguyễn Thị Thu"}
    message = manifest_bytes(**parts)  # type: ignore[arg-type]
    assert message.startswith(b'{"content_sha256":') and b" " not in message.replace(
        "Nguyễn Thị Thu".encode(), b"")
    assert "Nguyễn Thị Thu".encode() in message  # UTF-8, not escaped
    for name in parts:
        changed = {**parts, name: 5 if name == "version" else "other"}
        assert manifest_bytes(**changed) != message  # type: ignore[arg-type]


def test_the_signed_topics_are_every_event_that_carries_a_signature() -> None:
    import dataclasses

    from eventsourcing.utils import get_topic

    from capa.audit.signatures import SIGNED_TOPICS
    from capa.domain.corrective_action import CorrectiveAction
    from capa.domain.nonconformity import Nonconformity
    from capa.domain.record import Record
    from capa.domain.trail_review import AuditTrailReviews

    found = set()
    for aggregate in (Nonconformity, CorrectiveAction, AuditTrailReviews):
        for name in dir(aggregate):
            kind = getattr(aggregate, name)
            if isinstance(kind, type) and issubclass(kind, Record.Event) \
                    and dataclasses.is_dataclass(kind) \
                    and "signature" in {f.name for f in dataclasses.fields(kind)}:
                found.add(get_topic(kind))
    assert found == SIGNED_TOPICS
