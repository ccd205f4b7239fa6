"""Per-user Ed25519 signatures (SPEC §9.2): what is signed, and how a verifier checks it.

What is signed:

- a signature manifest: the canonical JSON (sorted keys, no spaces, UTF-8) of the record's id
  (NC-…/CA-…), the version whose content was signed, that content's SHA-256, the meaning, the UTC
  time, the user id and the printed name (``manifest_bytes``);
- an endorsement of a user's public key by an administrator: the canonical JSON of the user id,
  printed name, roles, public key, time and the administrator's id (``endorsement_bytes``);
- a role change (grant or revoke) by an administrator: the canonical JSON of the user id, the
  change, the role, the account version the change makes, the time and the administrator's id
  (``role_change_bytes``), so that no one without an administrator's password can give
  themselves a role, nor replay a signed change elsewhere;
- a service account (SPEC §11) by an administrator: the canonical JSON of its id, printed name,
  roles, time and the administrator's id (``service_account_bytes``), and each API token issued
  to it or revoked: the account, the change, the token's id and SHA-256, the account version the
  change makes, the time and the administrator's id (``token_change_bytes``), so that a store
  writer can neither make a service account nor give one a token;
- another account change: the canonical JSON of the user id, the action (``deactivate`` or
  ``unlock``, signed by an administrator; ``passwd``, signed by the user whose password it is,
  with the new credential), the account version the change makes, the time and the signer's id
  (``account_change_bytes``), so that a store writer can neither lock an administrator out,
  nor re-open a locked account, nor set someone's password;
- a password reset by an administrator (an account whose user lost their password, 21 CFR
  11.300(c)): the canonical JSON of the user id, the account version the reset makes, the
  user's new public key, the new credential, the reason, the time and the administrator's id
  (``password_reset_bytes``): the one way besides an endorsement that a key comes to a user.

How a verifier checks them is capa.audit.signature_walk; the checks of a store verification and
of a bundle are capa.audit.signature_checks.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from collections.abc import Sequence
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ALGORITHM = "Ed25519"
#: The value of StoreInitialised's ``signing`` field in stores that use digital signatures.
SCHEME = "ed25519-v1"
DIGITAL, PASSWORD_ATTESTED = "digital", "password-attested"

USER_TOPIC = "capa.domain.user:User."
STORE_INITIALISED = "capa.domain.store:StoreRecord.StoreInitialised"
RECORD_NAMESPACE = uuid5(NAMESPACE_URL, "urn:capa:record")
#: The ``ref`` of a record in the stored bytes of its first event.
REF = re.compile(rb'"ref":"([^"\\]{1,80})"')


def _canonical(value: dict[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def manifest_bytes(*, record: str, version: int, content_sha256: str, meaning: str,
                   signed_at: str, user_id: str, full_name: str) -> bytes:
    """The bytes a signature covers (scripts/verify_bundle.py repeats this)."""
    return _canonical({"purpose": "capa-signature-v1", "record": record, "version": version,
                       "content_sha256": content_sha256, "meaning": meaning,
                       "signed_at": signed_at, "user_id": user_id, "full_name": full_name})


def endorsement_bytes(*, user_id: str, full_name: str, roles: Sequence[str], public_key: str,
                      endorsed_at: str, admin: str) -> bytes:
    """The bytes an administrator signs to vouch for a user's public key and first roles."""
    return _canonical({"purpose": "capa-user-key-v2", "user_id": user_id,
                       "full_name": full_name, "roles": sorted(roles), "public_key": public_key,
                       "endorsed_at": endorsed_at, "admin": admin})


def role_change_bytes(*, user_id: str, change: str, role: str, version: int, signed_at: str,
                      admin: str) -> bytes:
    """The bytes an administrator signs to grant or revoke a role (`change`: grant, revoke);
    `version` is the account version the change makes."""
    return _canonical({"purpose": "capa-role-change-v1", "user_id": user_id, "change": change,
                       "role": role, "version": version, "signed_at": signed_at,
                       "admin": admin})


def service_account_bytes(*, user_id: str, full_name: str, roles: Sequence[str],
                          endorsed_at: str, admin: str) -> bytes:
    """The bytes an administrator signs to add a service account with its roles."""
    return _canonical({"purpose": "capa-service-account-v1", "user_id": user_id,
                       "full_name": full_name, "roles": sorted(roles),
                       "endorsed_at": endorsed_at, "admin": admin})


def token_change_bytes(*, user_id: str, change: str, token_id: str, token_sha256: str | None,
                       version: int, signed_at: str, admin: str) -> bytes:
    """The bytes an administrator signs to issue (`change`: issue, binding the token's
    SHA-256) or revoke (revoke) an API token of a service account; `version` is the account
    version the change makes."""
    return _canonical({"purpose": "capa-api-token-v1", "user_id": user_id, "change": change,
                       "token_id": token_id, "token_sha256": token_sha256, "version": version,
                       "signed_at": signed_at, "admin": admin})


#: The account changes signed by ``account_change_bytes``: the event's name -> its action.
ACCOUNT_ACTIONS = {"UserDeactivated": "deactivate", "AccountUnlocked": "unlock",
                   "PasswordChanged": "passwd"}


def account_change_bytes(*, user_id: str, action: str, version: int, signed_at: str,
                         signer: str, credential: str | None = None,
                         public_key: str | None = None) -> bytes:
    """The bytes signed to deactivate or unlock an account (by an administrator) or to change
    its password (by its user, binding the new `credential` and, from this release, the user's
    new `public_key`: a password change also replaces the key, so that no one who knew the old
    password, a temporary one an administrator set included, can sign with the old key again);
    `version` is the account version the change makes (scripts/verify_bundle.py repeats this).
    A change without a new key signs exactly the bytes it always did."""
    signed: dict[str, Any] = {"purpose": "capa-account-change-v1", "user_id": user_id,
                              "action": action, "version": version, "signed_at": signed_at,
                              "signer": signer, "credential": credential}
    if public_key is not None:
        signed["public_key"] = public_key
    return _canonical(signed)


def password_reset_bytes(*, user_id: str, version: int, public_key: str | None,
                         credential: str, reason: str, signed_at: str, admin: str) -> bytes:
    """The bytes an administrator signs to reset a user's password and give them a new key
    (scripts/verify_bundle.py repeats this)."""
    return _canonical({"purpose": "capa-password-reset-v1", "user_id": user_id,
                       "version": version, "public_key": public_key, "credential": credential,
                       "reason": reason, "signed_at": signed_at, "admin": admin})


def sign(key: Ed25519PrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message)).decode("ascii")


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def kind_of(signature: dict[str, Any]) -> str:
    return DIGITAL if signature.get("signature") else PASSWORD_ATTESTED


# -- which events carry what ----------------------------------------------------------------

#: The events that carry a signature (tests/unit/test_keyring.py holds this to the domain). An
#: attacker's "signature" in any other event does not count: capa cannot even fold that event.
SIGNED_TOPICS = frozenset({
    "capa.domain.nonconformity:Nonconformity.Closed",
    "capa.domain.corrective_action:CorrectiveAction.PlanApproved",
    "capa.domain.corrective_action:CorrectiveAction.EffectivenessVerified",
    "capa.domain.corrective_action:CorrectiveAction.EffectivenessNotVerified",
    "capa.domain.corrective_action:CorrectiveAction.EffectivenessInconclusive",
    "capa.domain.corrective_action:CorrectiveAction.Closed",
    "capa.domain.trail_review:AuditTrailReviews.ReviewSigned",
})
#: The account events that decide who holds which key, role, status and password.
ACCOUNT_NAMES = ("UserAdded", "RoleGranted", "RoleRevoked", "AccountLocked", "PasswordReset",
                 *ACCOUNT_ACTIONS, "ApiTokenIssued", "ApiTokenRevoked")
#: The events that decide who holds which key and role (the application's own checks).
ACCOUNT_TOPICS = [STORE_INITIALISED, *(USER_TOPIC + name for name in ACCOUNT_NAMES)]
