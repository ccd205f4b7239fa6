"""A service account's API tokens in the user record, without a store (SPEC §11): only service
accounts hold tokens and only reporter or quality; a token is known by its SHA-256 alone, is
valid through its expiry date (UTC), and once revoked stays revoked."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator

import pytest

from capa.domain.errors import InvalidInput, NotFound, NotPermitted
from capa.domain.record import actor_id
from capa.domain.user import SERVICE_CREDENTIAL, User, token_account

TODAY = dt.date(2026, 12, 3)
DIGEST = hashlib.sha256(b"capa_mes-line3_" + b"ab" * 32).hexdigest()


@pytest.fixture(autouse=True)
def acting_admin() -> Iterator[None]:
    token = actor_id.set("admin")
    yield
    actor_id.reset(token)


def machine(roles: list[str] | None = None) -> User:
    return User.add_service(user_id="mes-line3", full_name="MES line 3",
                            roles=roles or ["reporter"], endorsement=None)


def at(day: dt.date, hour: int = 12) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC)


def test_a_service_account_has_no_password_and_only_reporter_or_quality() -> None:
    account = machine(["quality", "reporter"])
    assert account.is_service and account.credential == SERVICE_CREDENTIAL
    assert account.roles == ["quality", "reporter"]
    for role in ("admin", "owner", "auditor"):
        with pytest.raises(InvalidInput, match="reporter and quality"):
            machine([role])
        with pytest.raises(InvalidInput, match="reporter and quality"):
            account.grant(role)
    assert account.version == 1


def test_a_token_is_valid_through_its_expiry_day_and_never_after() -> None:
    account = machine()
    token_id = account.issue_token(DIGEST, label="PLC", expires_on=TODAY, today=TODAY)
    assert token_id == "T1" and account.tokens is not None
    assert "sha256" not in account.fields()["tokens"]["T1"]
    assert account.live_token(DIGEST, at(TODAY, 23)) == "T1"
    with pytest.raises(NotPermitted, match="expired on 2026-12-03"):
        account.live_token(DIGEST, at(TODAY + dt.timedelta(days=1), 0))
    with pytest.raises(NotPermitted, match="unknown API token"):
        account.live_token("0" * 64, at(TODAY))


def test_a_revoked_token_stays_revoked_and_bad_changes_record_nothing() -> None:
    account = machine()
    account.issue_token(DIGEST, label=None, expires_on=None, today=TODAY)
    account.revoke_token("t1", "PLC replaced")
    with pytest.raises(NotPermitted, match="revoked"):
        account.live_token(DIGEST, at(TODAY))
    version = account.version
    with pytest.raises(InvalidInput, match="already revoked"):
        account.revoke_token("T1", "again")
    with pytest.raises(NotFound):
        account.revoke_token("T7", "no such token")
    with pytest.raises(InvalidInput, match="in the past"):
        account.issue_token(DIGEST, label=None, expires_on=TODAY - dt.timedelta(days=1),
                            today=TODAY)
    person = User.add(user_id="apatel", full_name="Anil Patel", roles=["reporter"],
                      credential="sha256:" + "0" * 64)
    with pytest.raises(InvalidInput, match="not a service account"):
        person.issue_token(DIGEST, label=None, expires_on=None, today=TODAY)
    assert account.version == version


def test_a_token_names_its_account() -> None:
    assert token_account("capa_mes_line-3_" + "ab" * 32) == "mes_line-3"
    for text in ("capa_mes-line3_" + "ab" * 31, "mes-line3:" + "ab" * 32,
                 "capa_MES_" + "ab" * 32, "capa__" + "ab" * 32):
        assert token_account(text) is None
