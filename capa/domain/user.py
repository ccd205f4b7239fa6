"""The user account as an event-sourced record: account history is part of the audit trail.

Size: an account is one aggregate whose events are one audit trail (roles, password, lockout,
sessions, e-mail address, a service account's API tokens); splitting the class would split that
history.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from eventsourcing.domain import event

from capa.domain.errors import InvalidInput, NotFound, NotPermitted
from capa.domain.record import Record
from capa.domain.values import choice, require_name, require_text, valid_email

#: Consecutive failed password checks that lock an account (21 CFR 11.300(d)).
MAX_FAILED_ATTEMPTS = 5

#: A session is valid for at most this long after login, whatever the activity (SPEC §2).
SESSION_MAX_AGE = dt.timedelta(hours=8)

_USER_ID = re.compile(r"^[a-z][a-z0-9._-]{1,31}$")

#: Signs a role change: (the role, the account version the change makes) -> the signature.
Authorise = Callable[[str, int], dict[str, Any] | None]
#: Signs another account change (SPEC §9.2): (the action: deactivate, unlock or passwd, the
#: account version the change makes) -> the signature.
AuthoriseChange = Callable[[str, int], dict[str, Any] | None]

#: Signs a service account's API token change: (the change: issue or revoke, the token id, the
#: token's SHA-256 (issue) or None, the account version the change makes) -> the signature.
AuthoriseToken = Callable[[str, str, str | None, int], dict[str, Any] | None]

#: The credential a service account's UserAdded names: it has no password, and never logs in
#: with one (SPEC §11); it authenticates with an API token.
SERVICE_CREDENTIAL = "service-account:no-password"
#: The roles a service account may hold: it raises and contains NCs for a machine (SPEC §11).
SERVICE_ROLES = frozenset({"reporter", "quality"})
#: How an API token reads: the prefix, the account id, "_", then 64 hex digits (32 random
#: bytes). The prefix tells it from a session token (`user:token`).
TOKEN_PREFIX = "capa_"
_TOKEN = re.compile(r"^capa_([a-z][a-z0-9._-]{1,31})_([0-9a-f]{64})$")

#: User records live under their own prefix so that no user id can collide with NC/CA refs.
USER_REF_PREFIX = "USER-"


class Role(StrEnum):
    ADMIN = "admin"
    QUALITY = "quality"
    OWNER = "owner"
    REPORTER = "reporter"
    AUDITOR = "auditor"


class UserStatus(StrEnum):
    ACTIVE = "active"
    LOCKED = "locked"
    DEACTIVATED = "deactivated"


def valid_user_id(value: str) -> str:
    """The canonical user id (lower case), or InvalidInput naming the expected form."""
    text = (value or "").strip().lower()
    if not _USER_ID.match(text):
        raise InvalidInput(
            f"{value!r} is not a valid user id (2-32 characters: a letter, then letters, "
            "digits, '.', '_' or '-')"
        )
    return text


#: Ids that read as another record's id (`capa history` and `show` take both kinds of id).
_RECORD_LIKE = re.compile(r"^(nc|ca)-\d{4}-\d+$|^user-")


def new_user_id(value: str) -> str:
    """`valid_user_id` for a new account, which may not look like a record id."""
    text = valid_user_id(value)
    if _RECORD_LIKE.match(text):
        raise InvalidInput(f"{value!r} is not a valid user id: it reads as a record id "
                           "(NC-…, CA-… or USER-…)")
    return text


def is_user_id(value: str) -> bool:
    return bool(_USER_ID.match((value or "").strip().lower()))


def user_ref(user_id: str) -> str:
    return USER_REF_PREFIX + valid_user_id(user_id)


def parse_roles(roles: list[str] | tuple[str, ...]) -> list[str]:
    if not roles:
        raise InvalidInput("a user needs at least one role")
    return sorted({choice(Role, r.strip().lower(), "role").value for r in roles})


def token_account(token: str) -> str | None:
    """The service account an API token names, or None when it is not shaped as one."""
    found = _TOKEN.match(token.strip())
    return found[1] if found else None


def service_roles(roles: list[str] | tuple[str, ...]) -> list[str]:
    """The roles of a new service account: reporter or quality only."""
    chosen = parse_roles(roles)
    if not set(chosen) <= SERVICE_ROLES:
        raise InvalidInput("a service account may hold only the roles reporter and quality, "
                           f"not {', '.join(sorted(set(chosen) - SERVICE_ROLES))}")
    return chosen


def credential_of(password_hash: str) -> str:
    """What an account event records of a password: the SHA-256 of its salted hash. It names
    the hash without disclosing it (the salt inside the hash is not in the log), and binds the
    hash kept outside the log to the audited history."""

    return "sha256:" + hashlib.sha256(password_hash.encode("utf-8")).hexdigest()


def is_legacy_credential(credential: str) -> bool:
    """Whether an account's credential is a hash held in events of an earlier release."""
    return not credential.startswith("sha256:")


class User(Record):
    """A person who may act on the store: roles, credential, lockout and sessions."""

    @classmethod
    def add(cls, *, user_id: str, full_name: str, roles: list[str], credential: str,
            public_key: str | None = None, endorsement: dict[str, Any] | None = None) -> User:
        uid = valid_user_id(user_id)
        return cls(ref=USER_REF_PREFIX + uid, user_id=uid,
                   full_name=require_name(full_name, "full name"),
                   roles=parse_roles(roles), credential=credential,
                   public_key=public_key, endorsement=endorsement)

    @classmethod
    def add_service(cls, *, user_id: str, full_name: str, roles: list[str],
                    endorsement: dict[str, Any] | None) -> User:
        """A service account (SPEC §11): roles reporter or quality, no password and no signing
        key; `endorsement` is the administrator's signature over its id, name and roles."""
        return cls.add(user_id=user_id, full_name=full_name, roles=service_roles(roles),
                       credential=SERVICE_CREDENTIAL, endorsement=endorsement)

    class UserAdded(Record.Created):
        """Version 2 names the password by `credential`, the SHA-256 of its hash, which the
        store keeps outside the log (SPEC §9.3). Version 1 events held the hash itself as
        `password_hash`; they are read with that hash as their credential."""

        class_version = 2
        ref: str
        user_id: str
        full_name: str
        roles: list[str]
        credential: str
        public_key: str | None
        endorsement: dict[str, Any] | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            # Accounts added before digital signatures have no key and no endorsement.
            state["credential"] = state.pop("password_hash")
            state.setdefault("public_key", None)
            state.setdefault("endorsement", None)

    @event(UserAdded)
    def __init__(self, ref: str, user_id: str, full_name: str, roles: list[str],
                 credential: str, public_key: str | None = None,
                 endorsement: dict[str, Any] | None = None) -> None:
        self.ref = ref
        self.user_id = user_id
        self.full_name = full_name
        self.roles = list(roles)
        # `sha256:HEX` naming a hash kept outside the log, or (events of earlier releases)
        # the scrypt hash itself; see is_legacy_credential.
        self.credential = credential
        # The user's Ed25519 public key (base64) and the administrator's signature vouching
        # for it (SPEC §9.2); None in accounts added before digital signatures.
        self.public_key = public_key
        self.endorsement = endorsement
        self.status = UserStatus.ACTIVE.value
        self.failed_attempts = 0
        # SHA-256 of each live session token -> its login time; never the token itself.
        self.sessions: dict[str, str] = {}

    #: The address reminders go to (capa notify); None until one is set. Accounts of earlier
    #: releases have none: their events never set it.
    email: str | None = None
    #: Whether an administrator reset the password, so that the user must choose their own
    #: (capa user passwd) before doing anything else. Set only by a reset: accounts that never
    #: had one fold exactly as before.
    must_change_password: bool = False

    #: A service account's API tokens: token id -> its SHA-256, label, expiry date, issue and
    #: revocation; never the token itself. None until one is issued.
    tokens: dict[str, dict[str, Any]] | None = None

    #: Whether the account's events hold a change that must be signed (an unlock, deactivation
    #: or password change): only such an account is held to the signature walk at login.
    _signed_change = False

    def fields(self) -> dict[str, Any]:
        # The hash is kept out of every view, diff and digest: history must never show it; nor
        # the SHA-256 of an API token, which only the token's check needs.
        shown = {k: v for k, v in super().fields().items() if k != "credential"}
        if shown.get("tokens"):
            shown["tokens"] = {token_id: {k: v for k, v in token.items() if k != "sha256"}
                               for token_id, token in shown["tokens"].items()}
        return shown

    @property
    def is_service(self) -> bool:
        """Whether this is a service account: no password, API tokens only (SPEC §11)."""
        return self.credential == SERVICE_CREDENTIAL

    @property
    def active(self) -> bool:
        return self.status != UserStatus.DEACTIVATED

    def require_usable(self) -> None:
        """Refuse a deactivated or locked account before any password is even checked."""
        if self.status == UserStatus.DEACTIVATED:
            raise NotPermitted(f"user {self.user_id} is deactivated")
        if self.status == UserStatus.LOCKED:
            raise NotPermitted(
                f"user {self.user_id} is locked after {MAX_FAILED_ATTEMPTS} failed password "
                "checks; an administrator must unlock it (capa user unlock)"
            )

    # -- roles -------------------------------------------------------------------------

    def trigger_event(self, event_class: Any, **kwargs: Any) -> None:
        # A role change carries an administrator's signature over its own time (SPEC §9.2):
        # the event records that very time, as a signed record event does (Record).
        authorisation = kwargs.get("authorisation")
        if isinstance(authorisation, dict) and authorisation.get("signed_at") \
                and kwargs.get("timestamp") is None:
            kwargs["timestamp"] = dt.datetime.fromisoformat(
                str(authorisation["signed_at"]).replace("Z", "+00:00"))
        super().trigger_event(event_class, **kwargs)

    def grant(self, role: str, authorise: Authorise | None = None) -> None:
        """Add a role; `authorise(role, version)` gives the administrator's signature over the
        change (None in stores made before digital signatures)."""
        chosen = choice(Role, role.strip().lower(), "role").value
        self._require_not_deactivated("grant a role to")
        if chosen in self.roles:
            raise InvalidInput(f"{self.user_id} already has the role {chosen}")
        if self.is_service and chosen not in SERVICE_ROLES:
            raise InvalidInput(f"{self.user_id} is a service account: it may hold only the "
                               "roles reporter and quality")
        self._role_granted(role=chosen, authorisation=authorise(chosen, self.version + 1)
                           if authorise is not None else None)

    class RoleGranted(Record.Event):
        """Version 2 carries the administrator's signature over the change (`authorisation`);
        version 1 events, of stores made before digital signatures, carry none."""

        class_version = 2
        role: str
        authorisation: dict[str, Any] | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state.setdefault("authorisation", None)

    @event(RoleGranted)
    def _role_granted(self, role: str, authorisation: dict[str, Any] | None = None) -> None:
        self.roles = sorted({*self.roles, role})

    def revoke(self, role: str, authorise: Authorise | None = None) -> None:
        chosen = choice(Role, role.strip().lower(), "role").value
        self._require_not_deactivated("revoke a role from")
        if chosen not in self.roles:
            raise InvalidInput(f"{self.user_id} does not have the role {chosen}")
        self._role_revoked(role=chosen, authorisation=authorise(chosen, self.version + 1)
                           if authorise is not None else None)

    class RoleRevoked(Record.Event):
        """Like RoleGranted: version 2 is signed by an administrator, version 1 is not."""

        class_version = 2
        role: str
        authorisation: dict[str, Any] | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state.setdefault("authorisation", None)

    @event(RoleRevoked)
    def _role_revoked(self, role: str, authorisation: dict[str, Any] | None = None) -> None:
        self.roles = [r for r in self.roles if r != role]

    # -- password and lockout ----------------------------------------------------------

    def change_password(self, credential: str, authorise: AuthoriseChange | None = None, *,
                        public_key: str | None = None) -> None:
        """Set a new password, and with it the user's new public key (None in stores made
        before digital signatures); `authorise("passwd", version)` gives the user's own
        signature, with the old key, over the change."""
        self._require_not_deactivated("change the password of")
        self._password_changed(credential=credential,
                               authorisation=_signed(authorise, "passwd", self.version + 1),
                               public_key=public_key)

    class PasswordChanged(Record.Event):
        """Version 4 carries the user's new public key (`public_key`, None for an account
        without one), signed for in `authorisation` with the old key; version 3 carries the
        user's own signature over the change and the new credential; version 2 named the new
        password by its digest (`credential`) and is unsigned; version 1 held the hash as
        `password_hash`."""

        class_version = 4
        credential: str
        authorisation: dict[str, Any] | None
        public_key: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["credential"] = state.pop("password_hash")

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            state.setdefault("authorisation", None)

        @staticmethod
        def upcast_v3_v4(state: dict[str, Any]) -> None:
            # Password changes before this release kept the key they had.
            state.setdefault("public_key", None)

    @event(PasswordChanged)
    def _password_changed(self, credential: str,
                          authorisation: dict[str, Any] | None = None,
                          public_key: str | None = None) -> None:
        # `public_key`, the user's new key, is stored only when given: changes of accounts
        # without a key keep exactly the state they always had.
        if public_key is not None:
            self.public_key = public_key
        self.credential = credential
        # A new password ends every session opened with the old one.
        self.sessions = {}
        if self.must_change_password:  # only accounts that were reset ever hold the flag
            self.must_change_password = False
        self._signed_change = True

    def reset_password(self, credential: str, public_key: str | None, reason: str,
                       authorise: Callable[[int], dict[str, Any] | None] | None = None) -> None:
        """An administrator sets a temporary password for a user who lost theirs (21 CFR
        11.300(c)), with a new signing key (the old one is encrypted under the lost password,
        so it can sign nothing again); `authorise(version)` gives the administrator's signature
        over the reset (None in stores made before digital signatures). The account is unlocked,
        its sessions end, and the user must choose their own password before anything else."""
        self._require_not_deactivated("reset the password of")
        if self.is_service:
            raise InvalidInput(f"{self.user_id} is a service account: it has no password to "
                               "reset; issue it a new API token (capa user token issue)")
        why = require_text(reason, "reason")
        self._password_reset(credential=credential, public_key=public_key, reason=why,
                             authorisation=authorise(self.version + 1)
                             if authorise is not None else None)

    class PasswordReset(Record.Event):
        """A new event type of this release: an administrator's reset, signed by them over the
        new key and credential (`authorisation`)."""

        credential: str
        public_key: str | None
        reason: str
        authorisation: dict[str, Any] | None

    @event(PasswordReset)
    def _password_reset(self, credential: str, public_key: str | None, reason: str,
                        authorisation: dict[str, Any] | None = None) -> None:
        self.credential = credential
        if public_key is not None:
            self.public_key = public_key
        self.status = UserStatus.ACTIVE.value
        self.failed_attempts = 0
        self.sessions = {}
        self.must_change_password = True
        self._signed_change = True

    def login_failed(self, attempt: int = 0) -> None:
        """Record a failed password check, `attempt` being its number in the run as the store
        counted it; the fifth in a row also locks the account."""
        self._login_failed()
        self.lock_if_due(attempt)

    def lock_if_due(self, attempt: int = 0) -> None:
        """Lock an active account whose run of failures (counted by the store or by the
        events) has reached the limit."""
        run = max(attempt, self.failed_attempts)
        if run >= MAX_FAILED_ATTEMPTS and self.status == UserStatus.ACTIVE:
            self._account_locked(failed_attempts=run)

    @event("LoginFailed")
    def _login_failed(self) -> None:
        # Deliberately no payload: the attempt's time and user are the event's own.
        self.failed_attempts += 1

    @event("AccountLocked")
    def _account_locked(self, failed_attempts: int) -> None:
        self.status = UserStatus.LOCKED.value
        self.sessions = {}

    def password_verified(self) -> None:
        """A correct password ends a run of failures; nothing is written when there was none."""
        if self.failed_attempts:
            self._failures_cleared()

    @event("FailedAttemptsCleared")
    def _failures_cleared(self) -> None:
        self.failed_attempts = 0

    def unlock(self, authorise: AuthoriseChange | None = None) -> None:
        """Unlock; `authorise("unlock", version)` gives the administrator's signature."""
        if self.status != UserStatus.LOCKED:
            raise InvalidInput(f"user {self.user_id} is not locked (it is {self.status})")
        self._account_unlocked(authorisation=_signed(authorise, "unlock", self.version + 1))

    class AccountUnlocked(Record.Event):
        """Version 2 is signed by an administrator (`authorisation`); version 1 events, of
        stores made before digital signatures, carry none."""

        class_version = 2
        authorisation: dict[str, Any] | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state.setdefault("authorisation", None)

    @event(AccountUnlocked)
    def _account_unlocked(self, authorisation: dict[str, Any] | None = None) -> None:
        self.status = UserStatus.ACTIVE.value
        self.failed_attempts = 0
        self._signed_change = True

    def deactivate(self, authorise: AuthoriseChange | None = None) -> None:
        """Deactivate; `authorise("deactivate", version)` gives the administrator's signature."""
        self._require_not_deactivated("deactivate")
        self._deactivated(authorisation=_signed(authorise, "deactivate", self.version + 1))

    class UserDeactivated(Record.Event):
        """Like AccountUnlocked: version 2 is signed by an administrator, version 1 is not."""

        class_version = 2
        authorisation: dict[str, Any] | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state.setdefault("authorisation", None)

    @event(UserDeactivated)
    def _deactivated(self, authorisation: dict[str, Any] | None = None) -> None:
        self.status = UserStatus.DEACTIVATED.value
        self.sessions = {}
        self._signed_change = True

    # -- e-mail ------------------------------------------------------------------------

    def set_email(self, address: str) -> None:
        """Set or change the address reminders are sent to."""
        self._require_not_deactivated("set the e-mail address of")
        chosen = valid_email(address)
        if chosen == self.email:
            raise InvalidInput(f"{self.user_id} already has the e-mail address {chosen}")
        self._email_changed(email=chosen)

    class EmailAddressChanged(Record.Event):
        """A new event type of this release: accounts of earlier stores simply have none."""

        email: str

    @event(EmailAddressChanged)
    def _email_changed(self, email: str) -> None:
        self.email = email

    # -- sessions ------------------------------------------------------------------------

    def log_in(self, token_sha256: str) -> None:
        self._logged_in(token_sha256=token_sha256)

    @event("UserLoggedIn")
    def _logged_in(self, token_sha256: str) -> None:
        # Sessions past their maximum age are dropped here so the set stays small.
        now = dt.datetime.fromisoformat(self.event_time.replace("Z", "+00:00"))
        self.sessions = {
            digest: started for digest, started in self.sessions.items()
            if now - dt.datetime.fromisoformat(started.replace("Z", "+00:00")) < SESSION_MAX_AGE
        }
        self.sessions[token_sha256] = self.event_time

    def session_started(self, token_sha256: str) -> dt.datetime | None:
        started = self.sessions.get(token_sha256)
        if started is None:
            return None
        return dt.datetime.fromisoformat(started.replace("Z", "+00:00"))

    def log_out(self, token_sha256: str) -> None:
        if token_sha256 in self.sessions:
            self._logged_out(token_sha256=token_sha256)

    @event("UserLoggedOut")
    def _logged_out(self, token_sha256: str) -> None:
        self.sessions.pop(token_sha256, None)

    # -- a service account's API tokens (SPEC §11) ------------------------------------------

    def issue_token(self, token_sha256: str, *, label: str | None, expires_on: dt.date | None,
                    today: dt.date, authorise: AuthoriseToken | None = None) -> str:
        """Issue an API token known by its SHA-256 only; its id (T1, T2, …). `authorise` gives
        the administrator's signature over the change (SPEC §9.2)."""
        if not self.is_service:
            raise InvalidInput(f"{self.user_id} is not a service account: API tokens are for "
                               "service accounts (capa user add-service)")
        self._require_not_deactivated("issue a token to")
        if expires_on is not None and expires_on < today:
            raise InvalidInput(f"the expiry date {expires_on.isoformat()} is in the past")
        text = require_name(label, "a token's label") if label is not None else None
        token_id = f"T{len(self.tokens or {}) + 1}"
        self._token_issued(token_id=token_id, token_sha256=token_sha256, label=text,
                           expires_on=expires_on.isoformat() if expires_on else None,
                           authorisation=authorise("issue", token_id, token_sha256,
                                                   self.version + 1)
                           if authorise is not None else None)
        return token_id

    class ApiTokenIssued(Record.Event):
        """A new event type of this release: an API token of a service account, named by its
        SHA-256 and signed by an administrator (`authorisation`)."""

        token_id: str
        token_sha256: str
        label: str | None
        expires_on: str | None
        authorisation: dict[str, Any] | None

    @event(ApiTokenIssued)
    def _token_issued(self, token_id: str, token_sha256: str, label: str | None,
                      expires_on: str | None, authorisation: dict[str, Any] | None) -> None:
        self.tokens = {**(self.tokens or {}), token_id: {
            "sha256": token_sha256, "label": label, "expires_on": expires_on,
            "issued_at": self.event_time, "issued_by": self.event_actor, "revoked_at": None,
            "reason": None}}

    def revoke_token(self, token_id: str, reason: str,
                     authorise: AuthoriseToken | None = None) -> None:
        """Revoke an API token for good, with a reason, signed by an administrator."""
        chosen = (token_id or "").strip().upper()
        token = (self.tokens or {}).get(chosen)
        if token is None:
            raise NotFound(f"not found (token): {self.user_id} has no token {token_id!r}")
        if token["revoked_at"] is not None:
            raise InvalidInput(f"the token {chosen} of {self.user_id} is already revoked")
        text = require_text(reason, "reason")
        self._token_revoked(token_id=chosen, reason=text,
                            authorisation=authorise("revoke", chosen, None, self.version + 1)
                            if authorise is not None else None)

    class ApiTokenRevoked(Record.Event):
        """A new event type of this release, signed by an administrator like its issue."""

        token_id: str
        reason: str
        authorisation: dict[str, Any] | None

    @event(ApiTokenRevoked)
    def _token_revoked(self, token_id: str, reason: str,
                       authorisation: dict[str, Any] | None) -> None:
        tokens = dict(self.tokens or {})
        tokens[token_id] = {**tokens[token_id], "revoked_at": self.event_time,
                            "reason": reason}
        self.tokens = tokens

    def live_token(self, token_sha256: str, now: dt.datetime) -> str:
        """The id of the live token with this SHA-256, or NotPermitted when there is none, or
        it was revoked, or its expiry date has passed (it is valid through that day, UTC)."""
        for token_id, token in (self.tokens or {}).items():
            if hmac.compare_digest(str(token["sha256"]), token_sha256):
                if token["revoked_at"] is not None:
                    raise NotPermitted(f"the API token {token_id} of {self.user_id} was "
                                       "revoked")
                expires = token["expires_on"]
                if expires is not None and now.astimezone(dt.UTC).date().isoformat() > expires:
                    raise NotPermitted(f"the API token {token_id} of {self.user_id} expired "
                                       f"on {expires}")
                return token_id
        raise NotPermitted("unknown API token")

    def _require_not_deactivated(self, what: str) -> None:
        if self.status == UserStatus.DEACTIVATED:
            raise InvalidInput(f"cannot {what} {self.user_id}: the account is deactivated")



def _signed(authorise: AuthoriseChange | None, action: str,
            version: int) -> dict[str, Any] | None:
    # Asked only once the domain has accepted the change: a refused one signs nothing.
    return authorise(action, version) if authorise is not None else None
