"""Per-user Ed25519 signatures (SPEC §9.2): how a verifier checks them, walking the log.

How a verifier trusts a key: it walks the account events in log order. The store's first event
(StoreInitialised) names the first administrator and their public key; every later key is
trusted from its UserAdded on only if an administrator whose own key was trusted, and who held
the admin role and was not deactivated at that point, endorsed it (with the roles it is added
with). Every role change, deactivation and unlock must be signed likewise by such an
administrator, and every password change by its own user's trusted key; a password reset gives
the user the new key it names only when such an administrator signed it; only a store made before
digital signatures (no signing anchor in its first event) holds unsigned ones, which are counted
as "legacy". Every signed event must then
carry a valid signature by the key its signer had at that point over the manifest of that very
event (record, version, printed name), and its content hash must be the hash of the record
folded from the events at the signed version, where the verifier can fold records (a store).

Signatures made before this release carry no digital signature: they are counted as
"password-attested". A store whose first event says it uses digital signatures accepts none.
A service account (SPEC §11) holds only with an administrator's signature over its id, name
and roles (reporter or quality), and each API token issued to it or revoked with one over the
token's id and SHA-256; the application lets in only tokens this walk accepted.
scripts/verify_bundle.py repeats the checks of people's accounts (without folding records) for
bundles.

Size: one walk over the account events decides every trust question (keys, roles, account
changes, service accounts and their tokens) in log order; split, the parts would each need the
same accounts' state at the same point.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid5

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from capa.audit.signatures import (
    ACCOUNT_ACTIONS,
    ALGORITHM,
    DIGITAL,
    PASSWORD_ATTESTED,
    RECORD_NAMESPACE,
    REF,
    SCHEME,
    STORE_INITIALISED,
    USER_TOPIC,
    account_change_bytes,
    endorsement_bytes,
    kind_of,
    manifest_bytes,
    password_reset_bytes,
    role_change_bytes,
    service_account_bytes,
    token_change_bytes,
)
from capa.domain.user import SERVICE_CREDENTIAL as _SERVICE_CREDENTIAL
from capa.domain.user import SERVICE_ROLES as _SERVICE_ROLES

__all__ = ["SignatureFailure", "SignatureWalk", "key_id"]




class SignatureFailure(Exception):
    """A signature or key endorsement that does not hold, at one position of the log."""

    def __init__(self, message: str, position: int, record: str, version: int) -> None:
        super().__init__(message)
        self.position, self.record, self.version = position, record, version


@dataclass
class _Account:
    full_name: str
    roles: set[str]
    active: bool = True
    public_key: Ed25519PublicKey | None = None
    key_id: str | None = None
    #: Locked by failed password checks and not unlocked by a signed change since.
    locked: bool = False
    #: The credential its last UserAdded or signed password change names.
    credential: str | None = None
    #: A service account (SPEC §11), and its live API tokens signed by an administrator:
    #: token id -> SHA-256.
    service: bool = False
    tokens: dict[str, str] = field(default_factory=dict)


@dataclass
class SignatureWalk:
    """Checks signatures while the events are fed in log order.

    ``content_of(record_hex, version)`` gives the content SHA-256 of a record folded at a
    version, or None where the caller cannot fold records."""

    content_of: Callable[[str, int], str | None] | None = None
    #: The ref of a record whose first event was not fed (the store's walk skips most).
    ref_of: Callable[[str], str | None] | None = None
    digital_store: bool = False
    anchor: dict[str, Any] | None = None
    accounts: dict[str, _Account] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)  # user record hex -> user id
    refs: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=lambda: {DIGITAL: 0, PASSWORD_ATTESTED: 0,
                                                             "keys": 0, "roles_signed": 0,
                                                             "roles_legacy": 0,
                                                             "changes_signed": 0,
                                                             "changes_legacy": 0,
                                                             "services_signed": 0,
                                                             "services_legacy": 0})
    content_checked: int = 0
    #: Without `content_of`, the content checks left for the caller (a bundle folds its records
    #: in a second pass): (fail, record hex, signed version, signature).
    deferred: list[tuple[Callable[[str], SignatureFailure], str, int, dict[str, Any]]] = field(
        default_factory=list)

    def feed(self, position: int, record_hex: str, version: int, topic: str,
             state: bytes) -> None:
        # Most events need no decoding: a record's first event only names it, and only
        # account, store and signed events are read whole, so the walk stays cheap.
        if not (topic.startswith(USER_TOPIC) or topic == STORE_INITIALISED
                or b'"signature":{' in state):
            if version == 1 and (found := REF.search(state)) is not None:
                self.refs.setdefault(record_hex, found[1].decode("utf-8"))
            return
        try:
            data = json.loads(state.decode("utf-8"))
        except ValueError:
            return  # the ledger check reports bytes that are not an event
        if not isinstance(data, dict):
            return
        if version == 1 and isinstance(data.get("ref"), str):
            self.refs.setdefault(record_hex, data["ref"])
        if record_hex not in self.refs and self.ref_of is not None:
            self.refs[record_hex] = self.ref_of(record_hex) or record_hex
        record = self.refs.get(record_hex, record_hex)

        def fail(message: str) -> SignatureFailure:
            return SignatureFailure(message, position, record, version)

        if topic == STORE_INITIALISED:
            if position != 1 or version != 1:
                raise fail("a second store record: only the store's first event sets it up")
            signing = data.get("signing")
            self.digital_store = isinstance(signing, dict) and signing.get("scheme") == SCHEME
            self.anchor = signing if self.digital_store else None
        elif topic.startswith(USER_TOPIC):
            self._account_event(topic[len(USER_TOPIC):], record_hex, version, data, fail)
        signature = data.get("signature")
        if isinstance(signature, dict):
            self._signature(record_hex, record, version, data, signature, fail)

    # -- accounts and keys ---------------------------------------------------------------

    def _account_event(self, name: str, record_hex: str, version: int, data: dict[str, Any],
                       fail: Callable[[str], SignatureFailure]) -> None:
        if name == "UserAdded":
            user_id = str(data.get("user_id"))
            if version != 1 or uuid5(RECORD_NAMESPACE, f"USER-{user_id}").hex != record_hex \
                    or user_id in self.accounts:
                raise fail(f"an account record for {user_id} that is not that user's own")
            roles = data.get("roles") or []
            if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
                raise fail(f"the roles of {user_id} are malformed")
            account = _Account(str(data.get("full_name")), set(roles))
            credential = data.get("credential", data.get("password_hash"))
            account.credential = credential if isinstance(credential, str) else None
            public_key = data.get("public_key")
            if account.credential == _SERVICE_CREDENTIAL:
                self._service_account(user_id, account, roles, public_key,
                                      data.get("endorsement"), fail)
            elif public_key is not None:
                account.public_key = self._trusted_key(user_id, account.full_name, roles,
                                                       public_key, data.get("endorsement"), fail)
                account.key_id = key_id(public_key)
                self.counts["keys"] += 1
            elif self.digital_store:
                # Every person of such a store is added with a key an administrator endorsed
                # (the endorsement covers the roles): an account without one was added past capa.
                raise fail(f"{user_id} is added with no signing key and no administrator's "
                           "endorsement, which this store requires")
            self.accounts[user_id] = account
            self.owners[record_hex] = user_id
            return
        owner = self.accounts.get(self.owners.get(record_hex, ""))
        if owner is None:
            return
        if name in ("RoleGranted", "RoleRevoked"):
            role = str(data.get("role"))
            if owner.service and name == "RoleGranted" and role not in _SERVICE_ROLES:
                raise fail(f"the role {role} granted to the service account "
                           f"{self.owners[record_hex]}, which may hold only reporter and "
                           "quality")
            self._role_change(self.owners[record_hex], "grant" if name == "RoleGranted"
                              else "revoke", role, version, data, fail)
            if name == "RoleGranted":
                owner.roles.add(role)
            else:
                owner.roles.discard(role)
        elif name in ("ApiTokenIssued", "ApiTokenRevoked"):
            self._token_change(self.owners[record_hex], owner, name == "ApiTokenIssued",
                               version, data, fail)
        elif name == "AccountLocked":
            # Written by the failed check itself, when no key can be opened: never signed.
            owner.locked = True
        elif name == "PasswordReset":
            user_id = self.owners[record_hex]
            if owner.service:
                raise fail(f"the password reset of {user_id}, a service account, which has no "
                           "password")
            public_key = data.get("public_key")
            key = self._reset(user_id, version, data, fail)
            owner.credential = str(data.get("credential"))
            owner.locked = False
            if key is not None:
                owner.public_key, owner.key_id = key, key_id(public_key)
                self.counts["keys"] += 1
        elif name in ACCOUNT_ACTIONS:
            action = ACCOUNT_ACTIONS[name]
            credential = data.get("credential", data.get("password_hash"))
            self._account_change(self.owners[record_hex], action, version, data, fail,
                                 credential=str(credential) if action == "passwd"
                                 and credential is not None else None)
            if action == "deactivate":
                owner.active = False
            elif action == "unlock":
                owner.locked = False
            else:
                owner.credential = str(credential)
                if (new_key := data.get("public_key")) is not None:
                    # Signed for with the old key (checked above): from here on, the new one.
                    trusted = _public_key(new_key)
                    if trusted is None:
                        raise fail(f"the password change of {self.owners[record_hex]} gives "
                                   "no Ed25519 key")
                    owner.public_key, owner.key_id = trusted, key_id(new_key)
                    self.counts["keys"] += 1

    def _service_account(self, user_id: str, account: _Account, roles: list[str],
                         public_key: Any, endorsement: Any,
                         fail: Callable[[str], SignatureFailure]) -> None:
        """A service account holds only with reporter or quality, no key, and (in a store with a
        signing anchor) the signature of an administrator trusted at that point."""
        if public_key is not None or not set(roles) <= _SERVICE_ROLES:
            raise fail(f"the service account {user_id} holds a key or a role other than "
                       "reporter and quality")
        account.service = True
        if endorsement is None:
            if self.digital_store:
                raise fail(f"the service account {user_id} is signed by no administrator, "
                           "which this store requires")
            self.counts["services_legacy"] += 1
            return
        if not isinstance(endorsement, dict):
            raise fail(f"the service account {user_id} carries a malformed signature")
        admin_id = str(endorsement.get("admin"))
        admin = self.accounts.get(admin_id)
        if admin is None or admin.public_key is None or not admin.active \
                or "admin" not in admin.roles or endorsement.get("key_id") != admin.key_id:
            raise fail(f"the service account {user_id} is signed by {admin_id}, who was not an "
                       "administrator with a trusted key at that point")
        message = service_account_bytes(user_id=user_id, full_name=account.full_name,
                                        roles=roles,
                                        endorsed_at=str(endorsement.get("endorsed_at")),
                                        admin=admin_id)
        if not _valid(admin.public_key, endorsement.get("signature"), message):
            raise fail(f"the signature of {admin_id} on the service account {user_id} is "
                       "forged")
        self.counts["services_signed"] += 1

    def _token_change(self, user_id: str, owner: _Account, issue: bool, version: int,
                      data: dict[str, Any], fail: Callable[[str], SignatureFailure]) -> None:
        """An API token is issued or revoked only for a service account, signed by an
        administrator trusted at that point; unsigned only in a store without a signing
        anchor. A token counts (capa.app.identity) only once issued here."""
        token_id = str(data.get("token_id"))
        digest = data.get("token_sha256") if issue else None
        what = f"the {'issue' if issue else 'revocation'} of the API token {token_id} of " \
               f"{user_id}"
        if not owner.service:
            raise fail(f"{what}, which is not a service account")
        authorisation = data.get("authorisation")
        if authorisation is None:
            if self.digital_store:
                raise fail(f"{what} is signed by no administrator, which this store requires")
            self.counts["services_legacy"] += 1
        else:
            if not isinstance(authorisation, dict):
                raise fail(f"{what} carries a malformed signature")
            admin_id = str(authorisation.get("admin"))
            admin_key = self._signer(what, admin_id, authorisation, data, fail, admin=True)
            message = token_change_bytes(user_id=user_id, change="issue" if issue else "revoke",
                                         token_id=token_id,
                                         token_sha256=str(digest) if issue else None,
                                         version=version,
                                         signed_at=str(authorisation.get("signed_at")),
                                         admin=admin_id)
            if not _valid(admin_key, authorisation.get("signature"), message):
                raise fail(f"the signature of {admin_id} on {what} is forged or was copied "
                           "from another event")
            self.counts["services_signed"] += 1
        if issue:
            owner.tokens[token_id] = str(digest)
        else:
            owner.tokens.pop(token_id, None)

    def _account_change(self, user_id: str, action: str, version: int, data: dict[str, Any],
                        fail: Callable[[str], SignatureFailure], *,
                        credential: str | None) -> None:
        """A deactivation or unlock holds only with a valid signature by an administrator whose
        key is trusted at that point, a password change only with its own user's (with the key
        it replaces, over the new key it names); unsigned ones only in a store without a signing
        anchor."""
        what = {"deactivate": f"the deactivation of {user_id}",
                "unlock": f"the unlock of {user_id}",
                "passwd": f"the password change of {user_id}"}[action]
        own = action == "passwd"
        authorisation = data.get("authorisation")
        if authorisation is None:
            if self.digital_store:
                raise fail(f"{what} is signed by no "
                           f"{'key of that user' if own else 'administrator'}, which this "
                           "store requires")
            self.counts["changes_legacy"] += 1
            return
        if not isinstance(authorisation, dict):
            raise fail(f"{what} carries a malformed signature")
        signer_id = str(authorisation.get("signer"))
        if own and signer_id != user_id:
            raise fail(f"{what} is signed by {signer_id}, not by that user")
        signer_key = self._signer(what, signer_id, authorisation, data, fail, admin=not own)
        new_key = data.get("public_key") if own else None
        message = account_change_bytes(user_id=user_id, action=action, version=version,
                                       signed_at=str(authorisation.get("signed_at")),
                                       signer=signer_id, credential=credential,
                                       public_key=None if new_key is None else str(new_key))
        if not _valid(signer_key, authorisation.get("signature"), message):
            raise fail(f"the signature of {signer_id} on {what} is forged or was copied from "
                       "another event")
        self.counts["changes_signed"] += 1

    def _signer(self, what: str, signer_id: str, authorisation: dict[str, Any],
                data: dict[str, Any], fail: Callable[[str], SignatureFailure], *,
                admin: bool) -> Ed25519PublicKey:
        """The account that signed an account or role change, if it was an active user (an
        administrator, with `admin`) whose key was trusted at that point, and the signature
        names that key, the event's actor and the event's time."""
        signer = self.accounts.get(signer_id)
        if signer is None or signer.public_key is None or not signer.active \
                or (admin and "admin" not in signer.roles):
            raise fail(f"{what} is signed by {signer_id}, who was not "
                       f"{'an administrator' if admin else 'an active user'} with a trusted "
                       "key at that point")
        if authorisation.get("key_id") != signer.key_id or data.get("actor") != signer_id \
                or not _same_time(authorisation.get("signed_at"), data.get("timestamp")):
            raise fail(f"{what} is signed by {signer_id} with another key, on an event made by "
                       f"{data.get('actor')} or at another time than the event's")
        return signer.public_key

    def _reset(self, user_id: str, version: int, data: dict[str, Any],
               fail: Callable[[str], SignatureFailure]) -> Ed25519PublicKey | None:
        """A password reset holds only with a valid signature by an administrator whose key is
        trusted at that point, over the user's new key, credential and the reason; the new key
        it returns is then the user's. Unsigned and keyless only in a store without a signing
        anchor."""
        what = f"the password reset of {user_id}"
        authorisation, public_key = data.get("authorisation"), data.get("public_key")
        if authorisation is None:
            if self.digital_store:
                raise fail(f"{what} is signed by no administrator, which this store requires")
            if public_key is not None:
                raise fail(f"{what} gives {user_id} a key no administrator signed")
            self.counts["changes_legacy"] += 1
            return None
        if not isinstance(authorisation, dict):
            raise fail(f"{what} carries a malformed signature")
        signer_id = str(authorisation.get("signer"))
        signer_key = self._signer(what, signer_id, authorisation, data, fail, admin=True)
        key = _public_key(public_key) if public_key is not None else None
        if key is None and (public_key is not None or self.digital_store):
            raise fail(f"{what} gives {user_id} no Ed25519 key")
        message = password_reset_bytes(
            user_id=user_id, version=version, public_key=public_key,
            credential=str(data.get("credential")), reason=str(data.get("reason")),
            signed_at=str(authorisation.get("signed_at")), admin=signer_id)
        if not _valid(signer_key, authorisation.get("signature"), message):
            raise fail(f"the signature of {signer_id} on {what} is forged or was copied from "
                       "another event")
        self.counts["changes_signed"] += 1
        return key

    def _role_change(self, user_id: str, change: str, role: str, version: int,
                     data: dict[str, Any], fail: Callable[[str], SignatureFailure]) -> None:
        """A role change holds only with a valid signature by an administrator whose key is
        trusted at that point; unsigned ones only in a store without a signing anchor."""
        what = f"the {change} of the role {role} {'to' if change == 'grant' else 'from'} " \
               f"{user_id}"
        authorisation = data.get("authorisation")
        if authorisation is None:
            if self.digital_store:
                raise fail(f"{what} is signed by no administrator, which this store requires")
            self.counts["roles_legacy"] += 1
            return
        if not isinstance(authorisation, dict):
            raise fail(f"{what} carries a malformed signature")
        admin_id = str(authorisation.get("admin"))
        admin_key = self._signer(what, admin_id, authorisation, data, fail, admin=True)
        message = role_change_bytes(user_id=user_id, change=change, role=role,
                                    version=version,
                                    signed_at=str(authorisation.get("signed_at")),
                                    admin=admin_id)
        if not _valid(admin_key, authorisation.get("signature"), message):
            raise fail(f"the signature of {admin_id} on {what} is forged or was copied from "
                       "another event")
        self.counts["roles_signed"] += 1

    def _trusted_key(self, user_id: str, full_name: str, roles: Sequence[str], public_key: Any,
                     endorsement: Any,
                     fail: Callable[[str], SignatureFailure]) -> Ed25519PublicKey:
        key = _public_key(public_key)
        if key is None:
            raise fail(f"the public key of {user_id} is not an Ed25519 key")
        anchor = self.anchor
        if endorsement is None:
            if anchor is not None and not self.accounts and anchor.get("admin") == user_id \
                    and anchor.get("public_key") == public_key:
                return key  # the first administrator, named by the store's first event
            raise fail(f"the key of {user_id} is endorsed by no administrator")
        if not isinstance(endorsement, dict):
            raise fail(f"the key endorsement of {user_id} is malformed")
        admin_id = str(endorsement.get("admin"))
        admin = self.accounts.get(admin_id)
        if admin is None or admin.public_key is None or not admin.active \
                or "admin" not in admin.roles:
            raise fail(f"the key of {user_id} is endorsed by {admin_id}, who was not an "
                       "administrator with a trusted key at that point")
        message = endorsement_bytes(user_id=user_id, full_name=full_name, roles=roles,
                                    public_key=str(public_key),
                                    endorsed_at=str(endorsement.get("endorsed_at")),
                                    admin=admin_id)
        if not _valid(admin.public_key, endorsement.get("signature"), message):
            raise fail(f"the endorsement of the key of {user_id} by {admin_id} is forged")
        return key

    # -- signatures ----------------------------------------------------------------------

    def _signature(self, record_hex: str, record: str, version: int, data: dict[str, Any],
                   sig: dict[str, Any], fail: Callable[[str], SignatureFailure]) -> None:
        user_id = str(sig.get("user_id"))
        meaning = sig.get("meaning")
        if kind_of(sig) == PASSWORD_ATTESTED:
            if self.digital_store:
                raise fail(f"the {meaning} signature of {user_id} has no digital signature, "
                           "which this store requires")
            self.counts[PASSWORD_ATTESTED] += 1
            return
        account = self.accounts.get(user_id)
        if account is None or account.public_key is None:
            raise fail(f"the {meaning} signature names {user_id}, who has no trusted key at "
                       "that point")
        if not account.active:
            raise fail(f"the {meaning} signature names {user_id}, deactivated at that point")
        if sig.get("algorithm") != ALGORITHM or sig.get("key_id") != account.key_id:
            raise fail(f"the {meaning} signature of {user_id} names another key or algorithm "
                       f"than the key {account.key_id} of that user")
        if not _same_time(sig.get("signed_at"), data.get("timestamp")):
            raise fail(f"the {meaning} signature of {user_id} was made at "
                       f"{sig.get('signed_at')}, not at the time of the event that holds it")
        if data.get("actor") != user_id:
            raise fail(f"the {meaning} signature of {user_id} is on an event made by "
                       f"{data.get('actor')}")
        signed_version = sig.get("signed_version")
        if signed_version != version - 1:
            raise fail(f"the {meaning} signature of {user_id} signs version {signed_version}, "
                       "not the version this event follows")
        if sig.get("full_name") != account.full_name:
            raise fail(f"the {meaning} signature prints {sig.get('full_name')!r}, not the "
                       f"name of {user_id}")
        message = manifest_bytes(record=record, version=version - 1,
                                 content_sha256=str(sig.get("content_sha256")),
                                 meaning=str(meaning), signed_at=str(sig.get("signed_at")),
                                 user_id=user_id, full_name=account.full_name)
        if not _valid(account.public_key, sig.get("signature"), message):
            raise fail(f"the {meaning} signature of {user_id} does not verify with that "
                       f"user's key {account.key_id}: it is forged or was copied from "
                       "another event")
        if self.content_of is not None:
            folded = self.content_of(record_hex, version - 1)
            if folded is not None:
                self.check_content(fail, folded, sig)
        else:
            self.deferred.append((fail, record_hex, version - 1, sig))
        self.counts[DIGITAL] += 1

    def check_content(self, fail: Callable[[str], SignatureFailure], folded: str,
                      sig: dict[str, Any]) -> None:
        """The content hash a signature binds against the record folded at the signed version."""
        if folded != sig.get("content_sha256"):
            raise fail(f"the {sig.get('meaning')} signature of {sig.get('user_id')} binds "
                       f"content {str(sig.get('content_sha256'))[:16]}…, but the record folded "
                       f"at version {sig.get('signed_version')} has {folded[:16]}…")
        self.content_checked += 1

    def summary(self) -> dict[str, Any]:
        return {"scheme": SCHEME if self.digital_store else "password-attested (before "
                "digital signatures)", DIGITAL: self.counts[DIGITAL],
                PASSWORD_ATTESTED: self.counts[PASSWORD_ATTESTED],
                "user_keys": self.counts["keys"], "content_checked": self.content_checked,
                "role_changes": {"signed": self.counts["roles_signed"],
                                 "legacy": self.counts["roles_legacy"]},
                "account_changes": {"signed": self.counts["changes_signed"],
                                    "legacy": self.counts["changes_legacy"]},
                "service_accounts": {"signed": self.counts["services_signed"],
                                     "legacy": self.counts["services_legacy"]}}


def _same_time(signed_at: Any, stored: Any) -> bool:
    """Whether a signature's UTC time is the stored event time ({"_type_": "datetime_iso"})."""
    try:
        moment = dt.datetime.fromisoformat(str(signed_at).replace("Z", "+00:00"))
        when = dt.datetime.fromisoformat(str(stored["_data_"]))
    except (ValueError, TypeError, KeyError):
        return False
    return moment == when


def key_id(public_key: Any) -> str:
    try:
        raw = base64.b64decode(str(public_key), validate=True)
    except (binascii.Error, ValueError):
        return ""
    return hashlib.sha256(raw).hexdigest()[:16]


def _public_key(value: Any) -> Ed25519PublicKey | None:
    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(str(value), validate=True))
    except (binascii.Error, ValueError):
        return None


def _valid(key: Ed25519PublicKey, signature: Any, message: bytes) -> bool:
    try:
        key.verify(base64.b64decode(str(signature), validate=True), message)
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True
