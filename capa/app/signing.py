"""Signatures (R10, SPEC §9.2): a record's electronic signature, checked against the password
asked again, and the administrator's or user's key signing account changes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from capa.app.accounts import Accounts
from capa.app.core import Core
from capa.domain.errors import NotPermitted
from capa.domain.parts import Signature
from capa.domain.record import Record
from capa.domain.user import User
from capa.domain.values import SignatureMeaning, require_name, require_text

if TYPE_CHECKING:
    from capa.adapters.userkeys import WrappedKey


class Signing:
    """What signs for the acting user on the core's store. Cryptography loads only when a key
    signs (start-up time, SPEC §7 P1), so its imports are made where a key is used."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.accounts = Accounts(core)

    def signature(self, record: Record, meaning: SignatureMeaning) -> Signature:
        core = self.core
        user = core.actor()
        if core.user(user).is_service:
            raise NotPermitted(f"{user} is a service account: it cannot sign (a signature "
                               "needs a person's password, R10)")
        # Both components are checked again at the moment of signing, even inside a session
        # (21 CFR 11.200(a)); a wrong password here counts towards the lockout like any other.
        password = core.signing_password()
        if not password:
            raise NotPermitted("signing needs your password again (CAPA_PASSWORD or the prompt)",
                               "R10")
        self.accounts.authenticate(user, password)
        signature: Signature = {
            "user_id": user, "full_name": core.full_name(user), "meaning": meaning.value,
            "content_sha256": record.content_digest(), "signed_version": record.version}
        account = core.user(user)
        if account.public_key is None:
            if core.digital_store():
                raise NotPermitted(f"{user} has no signing key, which this store requires; "
                                   "nothing was signed")
            # An account of a store made before digital signatures: the signature stays
            # password-attested, and history and verification report it as such.
            return signature
        from capa.audit.signatures import ALGORITHM, manifest_bytes, now_iso, sign

        key = key_id(account.public_key)
        private = self.private_key(user, password, key)
        signed_at = now_iso()
        message = manifest_bytes(record=record.ref, version=record.version,
                                 content_sha256=signature["content_sha256"],
                                 meaning=meaning.value, signed_at=signed_at, user_id=user,
                                 full_name=signature["full_name"])
        signature["signed_at"], signature["algorithm"] = signed_at, ALGORITHM
        signature["key_id"], signature["signature"] = key, sign(private, message)
        return signature

    def private_key(self, user: str, password: str, key: str) -> Any:
        from capa.app.keyring import unwrap

        stored = self.core.user_keys().get(user)
        if stored is None:
            raise NotPermitted(f"the signing key of {user} is missing from this store; "
                               "nothing was signed")
        return unwrap(stored.wrapped, password, user, key)

    def admin_key(self, why: str) -> tuple[User, Any] | None:
        """The acting administrator and their private key, opened with the password asked
        again; None when they have no key (a store made before digital signatures)."""
        core = self.core
        admin = core.user(core.actor())
        if admin.public_key is None:
            if core.digital_store():
                raise NotPermitted(f"{admin.user_id} has no signing key to {why} with")
            return None
        admin_password = core.signing_password()
        if not admin_password:
            raise NotPermitted(f"this command needs your password again, to {why} "
                               "(CAPA_PASSWORD or the prompt)")
        # Checked like a signing password: a wrong one counts towards the lockout.
        self.accounts.authenticate(admin.user_id, admin_password)
        return admin, self.private_key(admin.user_id, admin_password,
                                       key_id(admin.public_key))

    def role_signer(self, account: User, change: str) -> Any:
        """What signs a role change of `account` with the acting administrator's key (SPEC
        §9.2), once the domain has checked it: a store writer cannot give themselves a role."""

        def authorise(role: str, version: int) -> dict[str, Any] | None:
            from capa.audit.signatures import now_iso, role_change_bytes

            opened = self.admin_key(f"sign the {change} of a role")
            if opened is None:
                return None
            admin, private = opened
            signed_at = now_iso()
            message = role_change_bytes(user_id=account.user_id, change=change, role=role,
                                        version=version, signed_at=signed_at,
                                        admin=admin.user_id)
            return _authorisation(admin, private, message, admin=admin.user_id, signed_at=signed_at)

        return authorise

    def service_endorsement(self, uid: str, full_name: str, roles: list[str]
                            ) -> dict[str, Any] | None:
        """The acting administrator's signature over a new service account and its roles
        (SPEC §11); None when they have no key (a store made before digital signatures)."""
        from capa.audit.signatures import now_iso, service_account_bytes

        opened = self.admin_key("sign the new service account")
        if opened is None:
            return None
        admin, private = opened
        endorsed_at = now_iso()
        message = service_account_bytes(user_id=uid, full_name=require_text(full_name,
                                                                            "full name"),
                                        roles=roles, endorsed_at=endorsed_at,
                                        admin=admin.user_id)
        return _authorisation(admin, private, message, kind="service", admin=admin.user_id,
                              endorsed_at=endorsed_at)

    def token_signer(self, account: User) -> Any:
        """What signs the issue or revocation of an API token of `account` with the acting
        administrator's key, once the domain has checked it: a store writer cannot give a
        service account a token."""

        def authorise(change: str, token_id: str, token_sha256: str | None,
                      version: int) -> dict[str, Any] | None:
            from capa.audit.signatures import now_iso, token_change_bytes

            opened = self.admin_key(f"sign the {change} of an API token")
            if opened is None:
                return None
            admin, private = opened
            signed_at = now_iso()
            message = token_change_bytes(user_id=account.user_id, change=change,
                                         token_id=token_id, token_sha256=token_sha256,
                                         version=version, signed_at=signed_at,
                                         admin=admin.user_id)
            return _authorisation(admin, private, message, admin=admin.user_id, signed_at=signed_at)

        return authorise

    def endorsed_key(self, uid: str, full_name: str, roles: list[str], password: str
                     ) -> tuple[str | None, dict[str, Any] | None, WrappedKey | None]:
        """A new user's public key, endorsed with the acting administrator's key, whose
        password is asked again for it; the private key is stored encrypted under the new
        user's password. Nothing when the administrator has no key (a store made before
        digital signatures): the new account then signs password-attested like the others."""
        from capa.app import keyring
        from capa.audit.signatures import endorsement_bytes, now_iso

        opened = self.admin_key("endorse the new user's signing key")
        if opened is None:
            return None, None, None
        admin, admin_key = opened
        key = keyring.new_key()
        public_key = keyring.public_key_b64(key)
        endorsed_at = now_iso()
        message = endorsement_bytes(user_id=uid, full_name=require_name(full_name, "full name"),
                                    roles=roles, public_key=public_key, endorsed_at=endorsed_at,
                                    admin=admin.user_id)
        endorsement = _authorisation(admin, admin_key, message, admin=admin.user_id,
                                     endorsed_at=endorsed_at)
        return public_key, endorsement, wrapped(uid, key, password)

    def reset_key(self, account: User, credential: str, reason: str, password: str
                  ) -> tuple[str | None, Any, WrappedKey | None]:
        """For an administrator's password reset of `account` (SPEC §9.2): the user's new
        public key, what signs the reset with the acting administrator's key (binding the key,
        the new `credential` and the reason), and the new private key encrypted under the
        temporary `password`. No key and no signature when the administrator has none (a store
        made before digital signatures)."""
        from capa.app import keyring
        from capa.audit.signatures import now_iso, password_reset_bytes

        opened = self.admin_key("sign the password reset")
        if opened is None:
            return None, None, None
        admin, admin_key = opened
        key = keyring.new_key()
        public_key = keyring.public_key_b64(key)

        def authorise(version: int) -> dict[str, Any]:
            signed_at = now_iso()
            message = password_reset_bytes(user_id=account.user_id, version=version,
                                           public_key=public_key, credential=credential,
                                           reason=reason, signed_at=signed_at,
                                           admin=admin.user_id)
            return _authorisation(admin, admin_key, message, signer=admin.user_id,
                                  signed_at=signed_at)

        return public_key, authorise, wrapped(account.user_id, key, password)

    def own_key(self, uid: str, password: str) -> Any:
        """The user's private key, or None when the account has no key (a store made before
        digital signatures); a stored key that does not open can sign nothing, and a store
        that requires signatures then refuses the change."""
        account = self.core.user(uid)
        if account.public_key is None:
            return None
        try:
            return self.private_key(uid, password, key_id(account.public_key))
        except NotPermitted:
            if self.core.digital_store():
                raise NotPermitted(f"the signing key of {uid} does not open, so the password "
                                   "change cannot be signed; nothing was changed") from None
            return None

    def account_signer(self, account: User, *, own: Any = None,
                       credential: str | None = None, public_key: str | None = None) -> Any:
        """What signs a deactivation or unlock of `account` with the acting administrator's
        key, or (`own`: the user's private key) the user's own password change, binding its
        `credential` (SPEC §9.2): a store writer can neither lock an administrator out nor
        re-open a locked account nor set a password."""

        def authorise(action: str, version: int) -> dict[str, Any] | None:
            from capa.audit.signatures import account_change_bytes, now_iso

            if action == "passwd":
                if own is None:
                    return None
                signer, private = account, own
            else:
                opened = self.admin_key(f"sign the {action} of an account")
                if opened is None:
                    return None
                signer, private = opened
            signed_at = now_iso()
            message = account_change_bytes(user_id=account.user_id, action=action,
                                           version=version, signed_at=signed_at,
                                           signer=signer.user_id, credential=credential,
                                           public_key=public_key)
            return _authorisation(signer, private, message, signer=signer.user_id,
                                  signed_at=signed_at)

        return authorise


def _authorisation(by: User, private: Any, message: bytes, /, **fields: str) -> dict[str, Any]:
    """An account, role or token change's signature as its event keeps it: `fields` (who
    signed, and when), the key id of `by` and the Ed25519 signature over `message`."""
    from capa.audit.signatures import sign

    return {**fields, "key_id": key_id(str(by.public_key)), "signature": sign(private, message)}


def wrapped(user: str, key: Any, password: str) -> WrappedKey:
    """A private key encrypted under its user's password, to be kept in the store."""
    from capa.adapters.userkeys import WrappedKey
    from capa.app import keyring

    return WrappedKey(user, key_id(keyring.public_key_b64(key)),
                      keyring.wrap(key, password, user))


def key_id(public_key: str) -> str:
    from capa.app.keyring import key_id as of

    return of(public_key)
