"""Service accounts and their API tokens (SPEC §11): an ERP, MES or complaint system raises NCs
as an account of its own, with a token instead of a password.

An administrator adds the account (roles reporter or quality only) and issues and revokes its
tokens; each change is signed with the administrator's key (SPEC §9.2). A token is 32 random
bytes, shown once; the store keeps only its SHA-256 (a fast hash is right for a random secret),
in the account's events. A token counts only when the signature walk of the account events
accepted its issue, so a token written into the store past capa lets no one in, and `capa audit
verify` names the event.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from typing import Any

from capa.app.accounts import sha256
from capa.app.core import Core, WriteResult
from capa.app.operations import operation
from capa.app.signing import Signing
from capa.domain.errors import InvalidInput, NotPermitted
from capa.domain.user import (
    TOKEN_PREFIX,
    User,
    new_user_id,
    service_roles,
    token_account,
    user_ref,
    valid_user_id,
)
from capa.domain.values import parse_date


class ServiceAccounts:
    """The service accounts of the core's store."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.signing = Signing(core)

    @operation("user add-service")
    def add_service(self, user: str, *, full_name: str, roles: Sequence[str]) -> WriteResult:
        """Add a service account: no password, no signing key, roles reporter or quality,
        signed with the acting administrator's key (their password is asked again)."""
        core = self.core
        uid = new_user_id(user)
        chosen = service_roles(list(roles))
        if core.exists(user_ref(uid)):
            raise InvalidInput(f"user {uid} already exists")
        endorsement = self.signing.service_endorsement(uid, full_name, chosen)
        account = User.add_service(user_id=uid, full_name=full_name, roles=chosen,
                                   endorsement=endorsement)
        core.persist(account)
        return WriteResult(account.user_id, account.status, account.version,
                           {"roles": list(account.roles), "kind": "service"})

    @operation("user token issue")
    def issue_token(self, user: str, *, label: str | None = None,
                    expires: str | None = None) -> dict[str, Any]:
        """Issue an API token to a service account, valid through its expiry date (UTC) when
        one is given. The token is in this result only: the store keeps its SHA-256."""
        core = self.core
        expires_on = parse_date(expires, "expiry date") if expires is not None else None
        account = core.user(valid_user_id(user))
        token = f"{TOKEN_PREFIX}{account.user_id}_{secrets.token_hex(32)}"
        token_id = account.issue_token(sha256(token), label=label, expires_on=expires_on,
                                       today=dt.datetime.now(dt.UTC).date(),
                                       authorise=self.signing.token_signer(account))
        core.persist(account)
        return {"id": account.user_id, "status": account.status, "version": account.version,
                "token_id": token_id, "token": token, "label": label,
                "expires_on": expires_on.isoformat() if expires_on else None}

    @operation("user token list")
    def list_tokens(self, user: str) -> list[dict[str, Any]]:
        """The tokens of a service account, without their digests."""
        account = self.core.user(valid_user_id(user))
        if not account.is_service:
            raise InvalidInput(f"{account.user_id} is not a service account")
        today = dt.datetime.now(dt.UTC).date().isoformat()
        rows = []
        for token_id, token in (account.tokens or {}).items():
            expires = token["expires_on"]
            state = "revoked" if token["revoked_at"] else \
                "expired" if expires is not None and today > expires else "active"
            rows.append({"token_id": token_id, "label": token["label"], "status": state,
                         "issued_at": token["issued_at"], "issued_by": token["issued_by"],
                         "expires_on": expires, "revoked_at": token["revoked_at"],
                         "reason": token["reason"]})
        return rows

    @operation("user token revoke")
    def revoke_token(self, user: str, token_id: str, *, reason: str) -> WriteResult:
        """Revoke a token for good, with a reason, signed with the administrator's key."""
        core = self.core
        account = core.user(valid_user_id(user))
        account.revoke_token(token_id, reason, self.signing.token_signer(account))
        core.persist(account)
        return WriteResult(account.user_id, account.status, account.version,
                           {"token_id": token_id.strip().upper(), "revoked": True})

    @operation("login")
    def resume_token(self, token: str) -> str:
        """The service account an API token authenticates, or NotPermitted: unknown, revoked
        or expired, a deactivated account, or a token whose issue no administrator signed."""
        uid = token_account(token)
        account = self.core.find_user(uid) if uid is not None else None
        if account is None or not account.is_service:
            raise NotPermitted("unknown API token")
        digest = sha256(token.strip())
        token_id = account.live_token(digest, dt.datetime.now(dt.UTC))
        account.require_usable()
        if self.core.signed_roles(account.user_id) is not None:
            signed = self.core.__dict__["_signed_walk"].accounts.get(account.user_id)
            if signed is None or signed.tokens.get(token_id) != digest:
                raise NotPermitted(f"the API token {token_id} of {account.user_id} was not "
                                   "issued by a signed administrator's change; run capa audit "
                                   "verify")
        return account.user_id
