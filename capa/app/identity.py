"""Users, sessions, passwords and signing keys (SPEC §2, §9.2, §9.5), and the store's creation
with its first administrator."""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any

from eventsourcing.utils import get_topic

import capa
from capa.app.accounts import new_password, sha256
from capa.app.core import Core, WriteResult
from capa.app.operations import operation
from capa.app.signing import Signing, wrapped
from capa.domain.errors import InvalidInput, NotPermitted
from capa.domain.record import utc_iso
from capa.domain.store import STORE_REF, StoreRecord
from capa.domain.user import (
    SESSION_MAX_AGE,
    User,
    UserStatus,
    new_user_id,
    parse_roles,
    user_ref,
    valid_user_id,
)
from capa.domain.values import require_text, valid_email

_USER_ADDED_TOPIC = get_topic(User.UserAdded)
#: Seconds of a session's idle limit (SPEC §2), held in the store, and the clock difference
#: tolerated for a last use ahead of this machine's clock.
SESSION_IDLE_SECONDS = 15 * 60
_CLOCK_SKEW_SECONDS = 60
#: A session's last use is written again only when older than this (start-up time, SPEC §7 P1).
_SESSION_REFRESH_SECONDS = 30

#: A password given as it is, or asked for only once the operation is authorised.
Password = str | Callable[[], str]


def _given(password: Password) -> str:
    return password if isinstance(password, str) else password()


class Identity:
    """The accounts of the core's store."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.signing = Signing(core)

    # -- logging in ------------------------------------------------------------------------

    @operation("login")
    def authenticate(self, user: str, password: str) -> str:
        """Check a user id and password (capa.app.accounts); the user's id."""
        return self.signing.accounts.authenticate(user, password)

    @operation("login")
    def login(self, user: str, password: str) -> dict[str, Any]:
        """Open a session: the store keeps only the SHA-256 of the returned random token, in
        the account's events (UserLoggedIn) and, with the time of its last use, in the
        store's session table."""
        core = self.core
        uid = self.signing.accounts.authenticate(user, password)
        account = core.user(uid)
        if not account.roles:
            raise NotPermitted(f"{uid} holds no role")

        token = secrets.token_urlsafe(32)
        core.credentials.open_session(sha256(token), uid, time.time())
        with core.acting_as(uid):
            account.log_in(sha256(token))
            core.persist(account)
        started = account.session_started(sha256(token))
        assert started is not None
        return {"user": uid, "token": token, "started_at": utc_iso(started)}

    @operation("login")
    def resume_session(self, user: str, token: str) -> str:
        """The user of a live session, or NotPermitted when it is unknown, ended, idle for 15
        minutes or older than the maximum session age. Both limits are held by the store: the
        login time by the account's events, the last use by the session table, which this
        call moves to now, so no file the client keeps can revive a session."""

        account = self.core.find_user(user)
        digest = sha256(token)
        started = account.session_started(digest) if account else None
        if account is None or started is None:
            raise NotPermitted("the session has ended; log in again (capa login)")
        account.require_usable()
        if dt.datetime.now(dt.UTC) - started >= SESSION_MAX_AGE:
            raise NotPermitted("the session is older than 8 hours; log in again (capa login)")
        live = self.core.credentials.use_session(digest, account.user_id, time.time(),
                                                 SESSION_IDLE_SECONDS, _CLOCK_SKEW_SECONDS,
                                                 _SESSION_REFRESH_SECONDS)
        if live is None:  # e.g. opened before the store kept sessions' last use
            raise NotPermitted("the session has ended; log in again (capa login)")
        if not live:
            raise NotPermitted("the session was idle for more than 15 minutes; log in again "
                               "(capa login)")
        return account.user_id

    @operation("logout")
    def logout(self, user: str, token: str) -> None:
        core = self.core
        account = core.find_user(user)
        core.credentials.close_session(sha256(token))
        if account is not None and sha256(token) in account.sessions:
            with core.acting_as(account.user_id):
                account.log_out(sha256(token))
                core.persist(account)

    @operation("whoami")
    def whoami(self) -> dict[str, Any]:
        account = self.core.user(self.core.actor())
        return {"user": account.user_id, "full_name": account.full_name,
                "roles": list(account.roles), "status": account.status}

    # -- accounts --------------------------------------------------------------------------

    @operation("user add")
    def add_user(self, user: str, *, full_name: str, roles: Sequence[str],
                 password: Password, email: str | None = None) -> WriteResult:
        core = self.core
        uid = new_user_id(user)
        # Checked before the password is asked for: a refused address writes nothing at all.
        address = valid_email(email) if email is not None else None
        if core.exists(user_ref(uid)):
            raise InvalidInput(f"user {uid} already exists")
        secret = _given(password)
        encoded, credential = new_password(secret)
        key, endorsement, kept = self.signing.endorsed_key(uid, full_name,
                                                           parse_roles(list(roles)), secret)
        account = User.add(user_id=uid, full_name=full_name, roles=list(roles),
                           credential=credential, public_key=key, endorsement=endorsement)
        if address is not None:
            # Saved with the account, in the same transaction.
            account.set_email(address)
        # The hash is kept before the event that names it, and only once the account is valid:
        # a failed save leaves a row that no event names, which is never used.
        core.credentials.put_hash(uid, credential, encoded)
        core.persist(account)
        # Stored only once the account exists, so that a lost race never replaces the key of
        # the account that won it.
        if kept is not None:
            core.user_keys().put(kept)
        return _user_result(account)

    @operation("user email")
    def set_email(self, user: str, address: str) -> WriteResult:
        """Set or change the address a user's reminders go to (capa notify): an administrator
        for anyone, every other user for themself."""
        core = self.core
        uid = valid_user_id(user)
        actor = core.actor()
        if uid != actor and not core.has_role(actor, "admin"):
            raise NotPermitted(f"{actor} may not set the e-mail address of {uid}: only an "
                               "administrator may set another user's")
        chosen = valid_email(address)
        result = self._change_user(uid, lambda account: account.set_email(chosen))
        return WriteResult(result.id, result.status, result.version,
                           {**(result.detail or {}), "email": chosen})

    @operation("user grant")
    def grant_role(self, user: str, role: str) -> WriteResult:
        return self._change_user(user,
                                 lambda u: u.grant(role, self.signing.role_signer(u, "grant")))

    @operation("user revoke")
    def revoke_role(self, user: str, role: str) -> WriteResult:
        if role.strip().lower() == "admin" and valid_user_id(user) == self.core.actor():
            # Another administrator remains whenever one revokes another's role; removing one's
            # own could leave no one able to manage accounts, unlock them or grant it back.
            raise InvalidInput("an administrator cannot remove their own admin role; another "
                               "administrator can")
        return self._change_user(user,
                                 lambda u: u.revoke(role, self.signing.role_signer(u, "revoke")))

    @operation("user unlock")
    def unlock_user(self, user: str) -> WriteResult:
        def unlock(account: User) -> None:
            account.unlock(self.signing.account_signer(account))
            # The run ends before the unlock is saved: should the save fail, the account is
            # still locked by its events, and never unlocked with a full run.
            self.core.credentials.clear_attempts(account.user_id)

        return self._change_user(user, unlock)

    @operation("user deactivate")
    def deactivate_user(self, user: str) -> WriteResult:
        if valid_user_id(user) == self.core.actor():
            raise InvalidInput("an administrator cannot deactivate their own account")
        return self._change_user(user,
                                 lambda u: u.deactivate(self.signing.account_signer(u)))

    @operation("user passwd")
    def change_password(self, current: Password, new: Password) -> WriteResult:
        """The acting user's own password; the current one is checked first. The change is
        signed with the user's own key (SPEC §9.2), which is then kept under the new one."""
        core = self.core
        uid = core.actor()
        old = _given(current)
        fresh = _given(new)
        self.signing.accounts.authenticate(uid, old)
        if old == fresh:
            raise InvalidInput("the new password must differ from the current one")
        encoded, credential = new_password(fresh)
        private = self.signing.own_key(uid, old)
        # A new password brings a new key, signed for with the old one: whoever knew the old
        # password (a temporary one an administrator set, say) cannot sign with the old key.
        public_key, rewrapped = None, None
        if private is not None:
            from capa.app import keyring

            new_key = keyring.new_key()
            public_key, rewrapped = keyring.public_key_b64(new_key), wrapped(uid, new_key, fresh)

        def change(account: User) -> None:
            account.change_password(credential, self.signing.account_signer(
                account, own=private, credential=credential, public_key=public_key),
                public_key=public_key)
            core.credentials.put_hash(uid, credential, encoded)

        result = self._change_user(uid, change)
        # Only once the event names the new hash: a failed save leaves the old one in use.
        core.credentials.drop_other_hashes(uid, credential)
        if rewrapped is not None:
            core.user_keys().put(rewrapped)
        return result

    @operation("user reset-password")
    def reset_password(self, user: str, *, password: Password, reason: str) -> WriteResult:
        """An administrator's reset of another user's lost password (21 CFR 11.300(c)): a
        temporary password the user must change at once, a new signing key endorsed by the
        administrator's signature over the reset, the account unlocked and its sessions ended.
        Signatures made with the old key stay verifiable with it."""
        core = self.core
        uid = valid_user_id(user)
        if uid == core.actor():
            raise InvalidInput("an administrator changes their own password with capa user "
                               "passwd; another administrator can reset it")
        account = core.user(uid)
        if account.status == UserStatus.DEACTIVATED:
            raise InvalidInput(f"cannot reset the password of {uid}: the account is "
                               "deactivated")
        if account.is_service:
            raise InvalidInput(f"{uid} is a service account: it has no password to reset; "
                               "issue it a new API token (capa user token issue)")
        why = require_text(reason, "reason")
        # Asked for only once the reset is known to be allowed: a refused one asks nothing.
        temporary = _given(password)
        encoded, credential = new_password(temporary)
        public_key, authorise, kept = self.signing.reset_key(account, credential, why,
                                                             temporary)
        account.reset_password(credential, public_key, why, authorise)
        core.credentials.put_hash(uid, credential, encoded)
        core.persist(account)
        # Only once the event names the new hash and key: a failed save changes nothing.
        core.credentials.drop_other_hashes(uid, credential)
        core.credentials.clear_attempts(uid)
        if kept is not None:
            core.user_keys().put(kept)
        result = _user_result(account)
        return WriteResult(result.id, result.status, result.version,
                           {**(result.detail or {}), "must_change_password": True})

    @operation("user list")
    def list_users(self) -> list[dict[str, Any]]:
        """Every account without its password hash, in user id order."""
        core = self.core
        users = []
        for item in core.recorder.select_notifications(start=None, limit=1_000_000,
                                                       topics=[_USER_ADDED_TOPIC]):
            added: Any = core.mapper.to_domain_event(item)
            account = core.user(str(added.user_id))
            users.append({"user": account.user_id, "full_name": account.full_name,
                          "roles": list(account.roles), "status": account.status,
                          "email": account.email,
                          "kind": "service" if account.is_service else "person",
                          "failed_attempts": account.failed_attempts})
        return sorted(users, key=lambda u: str(u["user"]))

    def _change_user(self, user: str, change: Any) -> WriteResult:
        account = self.core.user(valid_user_id(user))
        change(account)
        self.core.persist(account)
        return _user_result(account)

    # -- the store -------------------------------------------------------------------------

    @operation("init")
    def initialise(
        self, organisation: str, key_fingerprint: str | None = None, *,
        admin: str | None = None, full_name: str | None = None, password: str | None = None,
        profile: str = "iso9001",
    ) -> WriteResult:
        """Create the store record and its first administrator in one atomic save. `profile`
        is the standard the store is run under (iso9001 or iso13485, SPEC §12)."""
        from capa.app import keyring
        from capa.audit.signatures import SCHEME

        core = self.core
        uid = new_user_id(admin or core.actor())
        if core.exists(STORE_REF):
            raise InvalidInput("this store is already initialised")
        if password is None:
            raise InvalidInput("the first administrator needs a password")
        # The first administrator's key is named by the store's first event: the root of every
        # later key's chain of endorsements (SPEC §9.2).
        key = keyring.new_key()
        public_key = keyring.public_key_b64(key)
        with core.acting_as(uid):
            store = StoreRecord.create(ref=STORE_REF, organisation=organisation,
                                       tool_version=capa.__version__,
                                       key_fingerprint=key_fingerprint,
                                       signing={"scheme": SCHEME, "admin": uid,
                                                "public_key": public_key}, profile=profile)
            encoded, credential = new_password(password)
            account = User.add(user_id=uid, full_name=full_name or uid, roles=["admin"],
                               credential=credential, public_key=public_key)
            core.credentials.put_hash(uid, credential, encoded)
            core.persist(store, account)
        core.user_keys().put(wrapped(uid, key, password))
        return WriteResult(STORE_REF, store.status, store.version,
                           {"admin": uid, "profile": store.profile})

    @operation("store profile")
    def change_profile(self, profile: str, *, reason: str) -> WriteResult:
        """Switch the store to the iso9001 or iso13485 profile, with a recorded reason."""
        store = self.core.load(StoreRecord, STORE_REF)
        store.change_profile(profile, reason)
        self.core.persist(store)
        return WriteResult(STORE_REF, store.status, store.version,
                           {"profile": store.profile})

    @operation("store info")
    def store_details(self) -> dict[str, Any]:
        """The store's organisation, profile, creation and the release that made it."""
        return self.core.store_info()


def _user_result(account: User) -> WriteResult:
    return WriteResult(account.user_id, account.status, account.version,
                       {"roles": list(account.roles)})
