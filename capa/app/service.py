"""The capa application service: one method per command, queries return view models."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, Mapper, StoredEvent
from eventsourcing.utils import get_topic

import capa
from capa.app.passwords import hash_password, verify_password
from capa.app.permissions import allowed_roles, permits
from capa.app.readside import ReadSide
from capa.domain.errors import (
    Conflict,
    IntegrityFailure,
    InvalidInput,
    NotFound,
    NotPermitted,
    RuleViolation,
)
from capa.domain.nonconformity import Nonconformity
from capa.domain.record import Record, actor_id, record_uuid, utc_iso
from capa.domain.refs import RecordRef, is_ref
from capa.domain.user import (
    MAX_FAILED_ATTEMPTS,
    SESSION_MAX_AGE,
    USER_REF_PREFIX,
    Role,
    User,
    UserStatus,
    credential_of,
    is_legacy_credential,
    is_user_id,
    new_user_id,
    parse_roles,
    user_ref,
    valid_user_id,
)
from capa.domain.values import (
    CAStatus,
    NCStatus,
    SignatureMeaning,
    parse_date,
    require_text,
)

if TYPE_CHECKING:
    from capa.adapters.credentials import CredentialStore
    from capa.adapters.userkeys import WrappedKey
    from capa.app.views import (
        CorrectiveActionView,
        HistoryEntry,
        NonconformityView,
        OverdueItem,
    )
    from capa.domain.corrective_action import CorrectiveAction
    from capa.domain.evidence import EvidenceFile

R = TypeVar("R", bound=Record)

MAX_EVIDENCE_BYTES = 25 * 1024 * 1024
_CREATE_ATTEMPTS = 20
#: The kinds of record whose ids are NC-… and CA-…, named by topic: a command imports only the
#: record classes it works with (start-up time, SPEC §7 P1).
_REF_PREFIXES = {"capa.domain.nonconformity:Nonconformity": "NC",
                 "capa.domain.corrective_action:CorrectiveAction": "CA"}
_USER_ADDED_TOPIC = get_topic(User.UserAdded)
_NO_SUCH_USER_HASH = "scrypt$16384$8$1$" + "A" * 22 + "==$" + "A" * 43 + "="
#: Saves of a failed check tried before giving up: each parallel attempt on an account may
#: lose the race to the account's next version once.
_FAILURE_SAVE_ATTEMPTS = 40
#: How long a password check waits for parallel checks of the same account, and after how
#: many seconds a reserved check whose command died stops counting.
_CHECK_WAIT_SECONDS = 20
_CHECK_STALE_SECONDS = 30
#: Seconds of a session's idle limit (SPEC §2), held in the store, and the clock difference
#: tolerated for a last use ahead of this machine's clock.
SESSION_IDLE_SECONDS = 15 * 60
_CLOCK_SKEW_SECONDS = 60
#: A session's last use is written again only when older than this (start-up time, SPEC §7 P1).
_SESSION_REFRESH_SECONDS = 30

#: The password presented for this command, checked again when a signature is made (R10).
_signing_password: ContextVar[str | None] = ContextVar("capa_signing_password", default=None)


def _today() -> str:
    """Today's date in UTC, the calendar every stored date is read against."""
    return dt.datetime.now(dt.UTC).date().isoformat()


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class WriteResult:
    """What every write returns: the record, its new status and version."""

    id: str
    status: str
    version: int
    detail: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "status": self.status, "version": self.version}
        out.update(self.detail or {})
        return out


_EVERY_ROLE = frozenset(role.value for role in Role)


class _StrictMapper(Mapper[UUID]):
    """Reads stored events as eventsourcing does, except that a row capa cannot read (state
    that is TEXT or not JSON, an unknown type) is an integrity failure (exit 6) naming the
    event, never an unexpected error: capa wrote no such row, so the store was written past
    it."""

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        try:
            return super().to_domain_event(stored_event)
        except Exception as exc:  # noqa: BLE001 - every way a forged row fails to decode
            raise IntegrityFailure(
                f"integrity check failed: mismatch: the stored event {stored_event.topic!r} "
                f"of record {UUID(str(stored_event.originator_id)).hex} version "
                f"{stored_event.originator_version} cannot be read ({type(exc).__name__}); "
                "it was written past capa: run capa audit verify") from None


class CapaApplication(ReadSide, Application[UUID]):
    """Nonconformities and corrective actions in one event store, so that a CA's closure and
    its NCs' closures are one atomic save (R4)."""

    name = "capa"

    def construct_mapper(self) -> Mapper[UUID]:
        base = super().construct_mapper()
        return _StrictMapper(transcoder=base.transcoder, compressor=base.compressor,
                             cipher=base.cipher)

    def construct_env(self, name: str, env: Any = None) -> Any:
        # No snapshots are taken or read (SPEC §9.1): a snapshot row is a cache that anyone who
        # can write the store could forge, and folding a record's events is fast enough (P5).
        # The setting is pinned here, so neither the process environment nor a store's
        # settings can turn them back on; rows left by earlier releases are never read.
        environment = super().construct_env(name, env)
        for key in ("IS_SNAPSHOTTING_ENABLED", f"{name.upper()}_IS_SNAPSHOTTING_ENABLED"):
            environment[key] = "no"
        return environment

    # -- acting user -----------------------------------------------------------------------

    @contextmanager
    def acting_as(self, user: str, password: str | None = None) -> Iterator[None]:
        """Act as an authenticated user. The password, when given, is what a signing command
        checks again at the moment of signing (R10); without it no signature can be made."""
        token = actor_id.set(user)
        secret = _signing_password.set(password)
        try:
            yield
        finally:
            _signing_password.reset(secret)
            actor_id.reset(token)

    def _actor(self) -> str:
        user = actor_id.get()
        if not user:
            raise NotPermitted("no acting user: log in (capa login) or set CAPA_USER and "
                               "CAPA_PASSWORD")
        return user

    def full_name(self, user: str) -> str:
        """The printed name of a user (R9); a user id that is not an account prints as itself.
        Names never change once added, so they are cached for long histories."""
        names: dict[str, str] = self.__dict__.setdefault("_full_names", {})
        if user not in names:
            found = self._find_user(user) if is_user_id(user) else None
            if found is None:
                return user
            names[user] = found.full_name
        return names[user]

    # -- identity (SPEC §2) ------------------------------------------------------------------

    def _find_user(self, user: str) -> User | None:
        try:
            found: Any = self.repository.get(record_uuid(user_ref(user)))
        except (AggregateNotFoundError, InvalidInput):
            return None
        return found if isinstance(found, User) else None

    def _user(self, user: str) -> User:
        found = self._find_user(user)
        if found is None:
            raise NotFound(f"not found (user): {user!r} is not a user of this store")
        return found

    def _authorise(self, command: str) -> str:
        """The acting user's id, if that account is active and one of its roles may run the
        command (capa.app.permissions); otherwise NotPermitted before anything is written."""
        user = self._actor()
        account = self._find_user(user)
        if account is None:
            raise NotPermitted(f"{user} is not a user of this store")
        account.require_usable()
        if not permits(account.roles, command):
            needed = ", ".join(sorted(allowed_roles(command))) or "none"
            held = ", ".join(account.roles) or "none"
            raise NotPermitted(f"{user} (roles: {held}) may not {command} (needs: {needed})")
        # A command every role may run (the reads) needs no walk: no role it holds decides it.
        if allowed_roles(command) >= _EVERY_ROLE:
            return user
        signed = self._signed_roles(user)
        if signed is not None and not permits(sorted(signed), command):
            # The account's events give it a role no administrator signed: written into the
            # store past capa. Refused, and `audit verify` names the event (exit 6).
            raise NotPermitted(f"{user} may not {command}: the role it needs was not granted "
                               "by a signed administrator's change; run capa audit verify")
        return user

    def _signed_roles(self, user: str) -> set[str] | None:
        """The roles of `user` as the signature walk of the account events gives them (SPEC
        §9.2): only changes signed by an administrator trusted at that point count; None in a
        store made before digital signatures. It reads the account events only, once per
        process (about 70 ms in a store of 100,000 events), so a write can afford it."""
        from capa.audit.signature_walk import SignatureFailure, SignatureWalk
        from capa.audit.signatures import ACCOUNT_TOPICS

        # The walk is kept and fed only the events written since, so a run of commands in one
        # process reads each account event once. A forged event is left out (the walk refuses
        # it before applying it), so the roles it claims are never acted on, and everyone
        # else can still work, `audit verify` included, which reports it.
        state: dict[str, Any] = self.__dict__.setdefault(
            "_role_walk", {"walk": SignatureWalk(), "next": 1})
        walk, last = state["walk"], self.recorder.max_notification_id() or 0
        while state["next"] <= last:
            found = self.recorder.select_notifications(start=state["next"], limit=1000,
                                                       stop=last, topics=ACCOUNT_TOPICS)
            for item in found:
                if not isinstance(item.state, bytes | memoryview):
                    continue  # a row capa never wrote (audit verify names it)
                try:
                    walk.feed(item.id, UUID(str(item.originator_id)).hex,
                              item.originator_version, item.topic, bytes(item.state))
                except SignatureFailure:
                    continue
            state["next"] = found[-1].id + 1 if len(found) == 1000 else last + 1
        if not walk.digital_store:
            return None
        self.__dict__["_signed_walk"] = walk
        account = walk.accounts.get(user)
        return account.roles if account is not None and account.active else set()

    def _unsigned_account_change(self, account: User) -> str | None:
        """Why `account` may not be used as its events fold it: a deactivation, unlock or
        password change in its history that the signature walk refused (written past capa);
        None when there is none, or in a store made before digital signatures. It reuses the
        role check's walk of the account events, only for an account that holds such a change,
        so that most logins need no walk."""
        if not account._signed_change or self._signed_roles(account.user_id) is None:
            return None
        signed = self.__dict__["_signed_walk"].accounts.get(account.user_id)
        if signed is None:
            return None
        uid, check = account.user_id, "; capa audit verify, run by any other user, names it"
        if account.status == UserStatus.DEACTIVATED:
            # Still refused: were a genuine deactivation ever misjudged, a leaver would be let
            # back in; a store writer can refuse an account in other ways anyway.
            return (f"user {uid} is deactivated by a change no administrator signed{check}"
                    if signed.active else None)
        if signed.locked and account.status != UserStatus.LOCKED:
            return (f"user {uid} is locked, and the unlock in its history is not signed by an "
                    f"administrator{check}")
        if signed.credential != account.credential:
            return f"the password of {uid} was set by a change that user did not sign{check}"
        return None

    def authorise(self, command: str) -> str:
        """Check the acting user against the role table for a command before it runs; entry
        points call it for every command, reads included. A command the table does not name is
        refused for everyone (default deny, SPEC §9.6)."""
        if not allowed_roles(command):
            raise NotPermitted(f"{command} may not be run by anyone: the permission table "
                               "does not name it")
        return self._authorise(command)

    def _has_role(self, user: str, role: str) -> bool:
        account = self._find_user(user)
        return account is not None and role in account.roles

    @property
    def credentials(self) -> CredentialStore:
        """The store's tables outside the event log: password hashes, the run of failed
        checks of each account, and session use (capa.adapters.credentials)."""
        found: CredentialStore | None = self.__dict__.get("_credentials")
        if found is None:
            from capa.adapters.credentials import credential_store

            found = self.__dict__["_credentials"] = credential_store(self.recorder)
        return found

    def _password_hash(self, account: User) -> str:
        """The hash an account's events name; a hash outside the log that no event names is
        never used, so writing that table cannot change who may log in (SPEC §9)."""
        if is_legacy_credential(account.credential):
            return account.credential  # held in the events by an earlier release
        found = self.credentials.get_hash(account.user_id, account.credential)
        # A missing or replaced row matches nothing: such an account cannot log in until an
        # administrator looks into it, rather than accepting a password the log never set.
        return found if found is not None and credential_of(found) == account.credential \
            else _NO_SUCH_USER_HASH

    @staticmethod
    def _new_password(password: str) -> tuple[str, str]:
        """A new password's hash and the credential naming it (hashing refuses a weak one)."""
        encoded = hash_password(password)
        return encoded, credential_of(encoded)

    def authenticate(self, user: str, password: str) -> str:
        """Check a user id and password. Each check is first reserved in the store, atomically,
        and only while the failures and the checks under way stay below five, so that parallel
        guesses are counted one by one and none is checked once a run of five has locked the
        account (SPEC §9.5). A wrong password is recorded as LoginFailed (the
        fifth in a row locks the account) and then refused; the message never says which part
        was wrong, and nothing records the attempted password."""
        uid = user.strip().lower()
        account = self._find_user(uid)
        if account is None:
            # The same scrypt work as for a real account, so timing does not reveal user ids.
            verify_password(password, _NO_SUCH_USER_HASH)
            raise NotPermitted("unknown user id or wrong password")
        # A forged account change is never acted on: neither the unlock nor the password it
        # claims lets anyone in (SPEC §9.2); `audit verify` names the event.
        if (forged := self._unsigned_account_change(account)) is not None:
            raise NotPermitted(forged)
        account.require_usable()
        if self._reserve_check(account) == "locked":
            # The run is full: the guess is not checked, and the lock is recorded if the check
            # that filled the run has not recorded it yet.
            self._record_failure(account.user_id, attempt=MAX_FAILED_ATTEMPTS, checked=False)
            raise NotPermitted(
                f"user {account.user_id} is locked after {MAX_FAILED_ATTEMPTS} failed password "
                "checks; an administrator must unlock it (capa user unlock)")
        try:
            correct = verify_password(password, self._password_hash(account))
        except BaseException:
            self.credentials.release_check(account.user_id)
            raise
        if not correct:
            attempt = self.credentials.settle_check(account.user_id, failed=True)
            if self._record_failure(account.user_id, attempt=attempt, checked=True):
                raise NotPermitted(f"wrong password; {account.user_id} is now locked after "
                                   f"{MAX_FAILED_ATTEMPTS} failed attempts")
            raise NotPermitted("unknown user id or wrong password")
        self.credentials.settle_check(account.user_id, failed=False)
        if account.failed_attempts:
            with self.acting_as(account.user_id):
                account.password_verified()
                self._save(account)
        return account.user_id

    def _reserve_check(self, account: User) -> str:
        """Reserve a password check in the store: "go" or "locked"; while checks under way
        could fill the run, wait for them (they are tens of milliseconds each)."""
        import random
        import time

        deadline = time.monotonic() + _CHECK_WAIT_SECONDS
        while True:
            outcome = self.credentials.reserve_check(
                account.user_id, MAX_FAILED_ATTEMPTS, account.failed_attempts, time.time(),
                _CHECK_STALE_SECONDS)
            if outcome != "busy":
                return outcome
            if time.monotonic() > deadline:
                raise Conflict(f"other password checks of {account.user_id} are under way; "
                               "nothing was written, retry is safe")
            time.sleep(random.uniform(0.01, 0.05))  # noqa: S311 - back-off, not a secret

    def _record_failure(self, uid: str, *, attempt: int, checked: bool) -> bool:
        """Record a failed check (and the lock it brings) in the account's events; True when the
        account is locked afterwards. Parallel attempts write to the same account, so a save
        that lost the race reloads the account and records its event again."""
        import random
        import time

        for _ in range(_FAILURE_SAVE_ATTEMPTS):
            account = self._user(uid)
            with self.acting_as(uid):
                if checked:
                    account.login_failed(attempt)
                else:
                    account.lock_if_due(attempt)
            try:
                self.save(account)
            except IntegrityError:
                time.sleep(random.uniform(0.005, 0.05))  # noqa: S311 - back-off, not a secret
                continue
            return account.status == "locked"
        raise Conflict("the account changed while this command ran; retry is safe")

    def login(self, user: str, password: str) -> dict[str, Any]:
        """Open a session: the store keeps only the SHA-256 of the returned random token, in
        the account's events (UserLoggedIn) and, with the time of its last use, in the
        store's session table."""
        uid = self.authenticate(user, password)
        account = self._user(uid)
        if not account.roles:
            raise NotPermitted(f"{uid} holds no role")
        import secrets
        import time

        token = secrets.token_urlsafe(32)
        self.credentials.open_session(_sha256(token), uid, time.time())
        with self.acting_as(uid):
            account.log_in(_sha256(token))
            self._save(account)
        started = account.session_started(_sha256(token))
        assert started is not None
        return {"user": uid, "token": token, "started_at": utc_iso(started)}

    def resume_session(self, user: str, token: str) -> str:
        """The user of a live session, or NotPermitted when it is unknown, ended, idle for 15
        minutes or older than the maximum session age. Both limits are held by the store: the
        login time by the account's events, the last use by the session table, which this
        call moves to now, so no file the client keeps can revive a session."""
        import time

        account = self._find_user(user)
        digest = _sha256(token)
        started = account.session_started(digest) if account else None
        if account is None or started is None:
            raise NotPermitted("the session has ended; log in again (capa login)")
        account.require_usable()
        if dt.datetime.now(dt.UTC) - started >= SESSION_MAX_AGE:
            raise NotPermitted("the session is older than 8 hours; log in again (capa login)")
        live = self.credentials.use_session(digest, account.user_id, time.time(),
                                            SESSION_IDLE_SECONDS, _CLOCK_SKEW_SECONDS,
                                            _SESSION_REFRESH_SECONDS)
        if live is None:  # e.g. opened before the store kept sessions' last use
            raise NotPermitted("the session has ended; log in again (capa login)")
        if not live:
            raise NotPermitted("the session was idle for more than 15 minutes; log in again "
                               "(capa login)")
        return account.user_id

    def logout(self, user: str, token: str) -> None:
        account = self._find_user(user)
        self.credentials.close_session(_sha256(token))
        if account is not None and _sha256(token) in account.sessions:
            with self.acting_as(account.user_id):
                account.log_out(_sha256(token))
                self._save(account)

    def whoami(self) -> dict[str, Any]:
        account = self._user(self._actor())
        return {"user": account.user_id, "full_name": account.full_name,
                "roles": list(account.roles), "status": account.status}

    def add_user(self, user: str, *, full_name: str, roles: Sequence[str],
                 password: str) -> WriteResult:
        self._authorise("user add")
        uid = new_user_id(user)
        if self._exists(user_ref(uid)):
            raise InvalidInput(f"user {uid} already exists")
        encoded, credential = self._new_password(password)
        key, endorsement, wrapped = self._endorsed_key(uid, full_name, parse_roles(list(roles)),
                                                       password)
        account = User.add(user_id=uid, full_name=full_name, roles=list(roles),
                           credential=credential, public_key=key, endorsement=endorsement)
        # The hash is kept before the event that names it, and only once the account is valid:
        # a failed save leaves a row that no event names, which is never used.
        self.credentials.put_hash(uid, credential, encoded)
        self._save(account)
        # Stored only once the account exists, so that a lost race never replaces the key of
        # the account that won it.
        if wrapped is not None:
            self._user_keys().put(wrapped)
        return self._user_result(account)

    def grant_role(self, user: str, role: str) -> WriteResult:
        return self._change_user("user grant", user,
                                 lambda u: u.grant(role, self._role_signer(u, "grant")))

    def revoke_role(self, user: str, role: str) -> WriteResult:
        actor = self._authorise("user revoke")
        if role.strip().lower() == "admin" and valid_user_id(user) == actor:
            # Another administrator remains whenever one revokes another's role; removing one's
            # own could leave no one able to manage accounts, unlock them or grant it back.
            raise InvalidInput("an administrator cannot remove their own admin role; another "
                               "administrator can")
        return self._change_user("user revoke", user,
                                 lambda u: u.revoke(role, self._role_signer(u, "revoke")))

    def unlock_user(self, user: str) -> WriteResult:
        def unlock(account: User) -> None:
            account.unlock(self._account_signer(account))
            # The run ends before the unlock is saved: should the save fail, the account is
            # still locked by its events, and never unlocked with a full run.
            self.credentials.clear_attempts(account.user_id)

        return self._change_user("user unlock", user, unlock)

    def deactivate_user(self, user: str) -> WriteResult:
        if valid_user_id(user) == self._authorise("user deactivate"):
            raise InvalidInput("an administrator cannot deactivate their own account")
        return self._change_user("user deactivate", user,
                                 lambda u: u.deactivate(self._account_signer(u)))

    def change_password(self, current: str, new: str) -> WriteResult:
        """The acting user's own password; the current one is checked first. The change is
        signed with the user's own key (SPEC §9.2), which is then kept under the new one."""
        uid = self._authorise("user passwd")
        self.authenticate(uid, current)
        if current == new:
            raise InvalidInput("the new password must differ from the current one")
        encoded, credential = self._new_password(new)
        private = self._own_key(uid, current)
        rewrapped = _wrapped(uid, private, new) if private is not None else None

        def change(account: User) -> None:
            account.change_password(credential, self._account_signer(
                account, own=private, credential=credential))
            self.credentials.put_hash(uid, credential, encoded)

        result = self._change_user("user passwd", uid, change)
        # Only once the event names the new hash: a failed save leaves the old one in use.
        self.credentials.drop_other_hashes(uid, credential)
        if rewrapped is not None:
            self._user_keys().put(rewrapped)
        return result

    def list_users(self) -> list[dict[str, Any]]:
        """Every account without its password hash, in user id order."""
        self._authorise("user list")
        users = []
        for item in self.recorder.select_notifications(start=None, limit=1_000_000,
                                                       topics=[_USER_ADDED_TOPIC]):
            added: Any = self.mapper.to_domain_event(item)
            account = self._user(str(added.user_id))
            users.append({"user": account.user_id, "full_name": account.full_name,
                          "roles": list(account.roles), "status": account.status,
                          "failed_attempts": account.failed_attempts})
        return sorted(users, key=lambda u: str(u["user"]))

    def _change_user(self, command: str, user: str, change: Any) -> WriteResult:
        self._authorise(command)
        account = self._user(valid_user_id(user))
        change(account)
        self._save(account)
        return self._user_result(account)

    @staticmethod
    def _user_result(account: User) -> WriteResult:
        return WriteResult(account.user_id, account.status, account.version,
                           {"roles": list(account.roles)})

    # -- store -----------------------------------------------------------------------------

    def initialise(
        self, organisation: str, key_fingerprint: str | None = None, *,
        admin: str | None = None, full_name: str | None = None, password: str | None = None,
    ) -> WriteResult:
        """Create the store record and its first administrator in one atomic save."""
        from capa.domain.store import STORE_REF, StoreRecord

        uid = new_user_id(admin or self._actor())
        if self._exists(STORE_REF):
            raise InvalidInput("this store is already initialised")
        if password is None:
            raise InvalidInput("the first administrator needs a password")
        from capa.app import keyring
        from capa.audit.signatures import SCHEME

        # The first administrator's key is named by the store's first event: the root of every
        # later key's chain of endorsements (SPEC §9.2).
        key = keyring.new_key()
        public_key = keyring.public_key_b64(key)
        with self.acting_as(uid):
            store = StoreRecord(ref=STORE_REF, organisation=organisation,
                                tool_version=capa.__version__, key_fingerprint=key_fingerprint,
                                signing={"scheme": SCHEME, "admin": uid,
                                         "public_key": public_key})
            encoded, credential = self._new_password(password)
            account = User.add(user_id=uid, full_name=full_name or uid, roles=["admin"],
                               credential=credential, public_key=public_key)
            self.credentials.put_hash(uid, credential, encoded)
            self._save(store, account)
        self._user_keys().put(_wrapped(uid, key, password))
        return WriteResult(STORE_REF, store.status, store.version, {"admin": uid})

    def store_info(self) -> dict[str, Any]:
        from capa.domain.store import STORE_REF, StoreRecord

        store = self._load(StoreRecord, STORE_REF)
        return {"organisation": store.organisation, "tool_version": store.tool_version,
                "key_fingerprint": store.key_fingerprint, "created_at": utc_iso(store.created_on)}

    # -- nonconformities -------------------------------------------------------------------

    def raise_nc(
        self, *, title: str, description: str, source: str, severity: str,
        product: str | None = None, lot: str | None = None, external_ref: str | None = None,
        detected_on: str | None = None,
    ) -> WriteResult:
        user = self._authorise("nc raise")
        today = dt.datetime.now(dt.UTC).date()
        if detected_on is None:
            detected = today
        else:
            detected = parse_date(detected_on, "detected-on")
            if detected > today:
                raise InvalidInput(f"detected-on {detected} is in the future")

        def build(ref: str) -> Nonconformity:
            return Nonconformity.raise_new(
                ref=ref, title=title, description=description, source=source,
                severity=severity, product=product, lot=lot, external_ref=external_ref,
                detected_on=detected.isoformat(), reported_by=user,
            )

        nc = self._create("NC", build)
        return WriteResult(nc.ref, nc.status, nc.version)

    def contain_nc(self, ref: str, *, action: str, disposition: str = "none",
                   location: str | None = None) -> WriteResult:
        return self._update(Nonconformity, ref,
                            lambda nc: nc.contain(action, disposition, location),
                            command="nc contain")

    def assess_nc(
        self, ref: str, *, impact: int, likelihood: int, capa_required: bool,
        rationale: str | None = None,
    ) -> WriteResult:
        return self._update(
            Nonconformity, ref,
            lambda nc: nc.assess(impact, likelihood, capa_required, rationale),
            command="nc assess",
        )

    def link_nc(self, nc_ref: str, ca_ref: str) -> WriteResult:
        from capa.domain.corrective_action import CorrectiveAction

        self._authorise("nc link")
        nc = self._load(Nonconformity, nc_ref)
        ca = self._load(CorrectiveAction, ca_ref)
        if ca.status in (CAStatus.CLOSED, CAStatus.CANCELLED):
            raise RuleViolation("R7", f"cannot link {nc.ref} to {ca.ref}: it is {ca.status}")
        nc.link(ca.ref)
        ca.link_nc(nc.ref)
        self._save(nc, ca)
        return WriteResult(nc.ref, nc.status, nc.version, {"ca": ca.ref})

    def close_nc(self, ref: str) -> WriteResult:
        self._authorise("nc close")
        nc = self._load(Nonconformity, self._canonical(ref, "NC"))
        nc.close(self._signature(nc, SignatureMeaning.APPROVAL))
        self._save(nc)
        return WriteResult(nc.ref, nc.status, nc.version)

    def cancel_nc(self, ref: str, *, reason: str) -> WriteResult:
        return self._update(Nonconformity, ref, lambda nc: nc.cancel(reason), command="nc cancel")

    def reopen_nc(self, ref: str, *, reason: str) -> WriteResult:
        return self._update(Nonconformity, ref, lambda nc: nc.reopen(reason), command="nc reopen")

    def amend_nc(self, ref: str, *, field: str, value: str, reason: str) -> WriteResult:
        return self._update(Nonconformity, ref, lambda nc: nc.amend(field, value, reason),
                            command="nc amend")

    # -- corrective actions ----------------------------------------------------------------

    def open_ca(
        self, *, title: str, problem: str, owner: str, ncs: Sequence[str] = ()
    ) -> WriteResult:
        from capa.domain.corrective_action import CorrectiveAction

        self._authorise("ca open")
        owner = self._worker("owner", owner, "ca investigate", "investigate or plan the CA")
        nc_refs = list(dict.fromkeys(self._canonical(r, "NC") for r in ncs))
        linked = [self._load(Nonconformity, r) for r in nc_refs]
        for nc in linked:
            if nc.status != NCStatus.ASSESSED or not nc.capa_required:
                raise RuleViolation(
                    "R7", f"{nc.ref} must be assessed as needing a corrective action before one "
                    f"is opened for it (it is {nc.status})"
                )
        holder: list[Nonconformity] = []

        def build(ref: str) -> CorrectiveAction:
            holder.clear()
            ca = CorrectiveAction.open_new(
                ref=ref, title=title, problem=problem, owner=owner, linked_ncs=nc_refs
            )
            for r in nc_refs:
                nc = self._load(Nonconformity, r)
                nc.link(ref)
                holder.append(nc)
            return ca

        ca = self._create("CA", build, companions=holder)
        return WriteResult(ca.ref, ca.status, ca.version, {"linked_ncs": nc_refs})

    def investigate_ca(
        self, ref: str, *, method: str, root_cause: str, category: str,
        whys: Sequence[str] = (),
    ) -> WriteResult:
        from capa.domain.corrective_action import CorrectiveAction

        def change(ca: CorrectiveAction) -> None:
            self._require_owner_or_quality(ca, "investigate")
            ca.investigate(method, root_cause, category, list(whys))

        return self._update(CorrectiveAction, ref, change, command="ca investigate")

    def plan_ca(
        self, ref: str, *, action: str, assignee: str, due: str, action_type: str,
        past_due_reason: str | None = None,
    ) -> WriteResult:
        """Add an action item; a due date before today (UTC) needs `past_due_reason` (R5)."""
        from capa.domain.corrective_action import CorrectiveAction

        self._authorise("ca plan")
        due_date = parse_date(due, "due").isoformat()
        today = _today()
        numbers: list[str] = []

        worker = self._worker("assignee", assignee, "ca complete", "complete the action")

        def change(ca: CorrectiveAction) -> None:
            self._require_owner_or_quality(ca, "plan")
            numbers.append(ca.plan(action, worker, due_date, action_type, today=today,
                                   past_due_reason=past_due_reason))

        result = self._update(CorrectiveAction, ref, change, command="ca plan")
        return WriteResult(result.id, result.status, result.version, {"action": numbers[0]})

    def approve_ca(self, ref: str) -> WriteResult:
        from capa.domain.corrective_action import CorrectiveAction

        return self._update(
            CorrectiveAction, ref,
            lambda ca: ca.approve(self._signature(ca, SignatureMeaning.APPROVAL)),
            command="ca approve",
        )

    def complete_action(
        self, ref: str, action: str, *, note: str, evidence: Sequence[str | Path] = (),
        on_behalf_of: str | None = None, reason: str | None = None,
    ) -> WriteResult:
        """Mark an item done as its assignee or the CA owner; or, for quality, record it on
        behalf of one of them with a reason (both people are kept)."""
        from capa.domain.corrective_action import CorrectiveAction

        user = self._authorise("ca complete")
        ca = self._load(CorrectiveAction, self._canonical(ref, "CA"))
        item = ca.item(action)
        doer = user
        if on_behalf_of is not None:
            if not self._has_role(user, "quality"):
                raise NotPermitted(f"{user} may not record a completion on someone's behalf: "
                                   "that needs the quality role")
            doer = self._user(on_behalf_of.strip().lower()).user_id
            if doer == user:
                raise InvalidInput(f"{user} is you: complete the action without --on-behalf-of")
        if doer not in (item.get("assignee"), ca.owner):
            raise NotPermitted(f"{doer} may not complete {item['number']} of {ca.ref}: only its "
                               f"assignee ({item.get('assignee')}) or the CA owner ({ca.owner})")
        files, entries = self._evidence(evidence)
        if on_behalf_of is None:
            ca.complete(action, note, entries)
        else:
            ca.complete(action, note, entries, done_by=doer, reason=reason)
        self._save(ca, *files)
        return WriteResult(ca.ref, ca.status, ca.version, {"action": action.upper()})

    def extend_action(self, ref: str, action: str, *, due: str, reason: str,
                      allow_past_due: bool = False) -> WriteResult:
        """Move a due date later; a new date before today (UTC) needs `allow_past_due` (R5)."""
        from capa.domain.corrective_action import CorrectiveAction

        due_date = parse_date(due, "due").isoformat()
        today = _today()
        result = self._update(
            CorrectiveAction, ref,
            lambda ca: ca.extend(action, due_date, reason, today=today,
                                 allow_past_due=allow_past_due),
            command="ca extend")
        return WriteResult(result.id, result.status, result.version, {"action": action.upper()})

    def verify_ca(
        self, ref: str, *, effective: bool, note: str, evidence: Sequence[str | Path] = ()
    ) -> WriteResult:
        from capa.domain.corrective_action import CorrectiveAction

        self._authorise("ca verify")
        ca = self._load(CorrectiveAction, self._canonical(ref, "CA"))
        files, entries = self._evidence(evidence)
        ca.verify(effective, note, entries, self._signature(ca, SignatureMeaning.VERIFICATION))
        self._save(ca, *files)
        return WriteResult(ca.ref, ca.status, ca.version, {"iteration": ca.iteration})

    def close_ca(self, ref: str) -> WriteResult:
        from capa.domain.corrective_action import CorrectiveAction

        self._authorise("ca close")
        ca = self._load(CorrectiveAction, self._canonical(ref, "CA"))
        ncs = [self._load(Nonconformity, r) for r in ca.linked_ncs]
        closing = [nc for nc in ncs if nc.status == NCStatus.LINKED and ca.ref in nc.linked_cas]
        ca.close(self._signature(ca, SignatureMeaning.APPROVAL), [nc.ref for nc in closing])
        for nc in closing:
            nc.close_with(ca.ref)
        self._save(ca, *closing)  # one transaction: the CA and its NCs close together (R4)
        return WriteResult(ca.ref, ca.status, ca.version,
                           {"closed_ncs": [nc.ref for nc in closing]})

    def cancel_ca(self, ref: str, *, reason: str) -> WriteResult:
        from capa.domain.corrective_action import CorrectiveAction

        return self._update(CorrectiveAction, ref, lambda ca: ca.cancel(reason),
                            command="ca cancel")

    def reopen_ca(self, ref: str, *, reason: str) -> WriteResult:
        from capa.domain.corrective_action import CorrectiveAction

        return self._update(CorrectiveAction, ref, lambda ca: ca.reopen(reason),
                            command="ca reopen")

    def _worker(self, part: str, user: str, command: str, work: str) -> str:
        """The id of the active user named as a CA's owner or an action's assignee, who must
        hold a role that may run `command`; NotFound for a user the store does not have,
        InvalidInput otherwise."""
        account = self._find_user(user.strip().lower()) if is_user_id(user.strip().lower()) \
            else None
        if account is None:
            raise NotFound(f"not found (user): {part} {user!r} is not a user of this store")
        if not account.active:
            raise InvalidInput(f"{part} {account.user_id} is deactivated; name an active user")
        if not permits(account.roles, command):
            needed = " or ".join(sorted(allowed_roles(command)))
            raise InvalidInput(f"{part} {account.user_id} (roles: "
                               f"{', '.join(account.roles) or 'none'}) could not {work}: "
                               f"an {part} needs the {needed} role")
        return account.user_id

    def _require_owner_or_quality(self, ca: CorrectiveAction, what: str) -> None:
        user = self._actor()
        if user != ca.owner and not self._has_role(user, "quality"):
            raise NotPermitted(f"{user} may not {what} {ca.ref}: only its owner ({ca.owner}) "
                               "or the quality role")

    # -- queries ---------------------------------------------------------------------------

    def show(
        self, ref: str, *, version: int | None = None, as_of: str | None = None
    ) -> NonconformityView | CorrectiveActionView:
        from capa.app.views import CorrectiveActionView, NonconformityView

        canonical = self._canonical(ref)
        kind: type[Record] = Nonconformity
        if not canonical.startswith("NC"):
            from capa.domain.corrective_action import CorrectiveAction

            kind = CorrectiveAction
        if version is not None and as_of is not None:
            raise InvalidInput("give either a version or an as-of time, not both")
        if as_of is not None:
            version = self._version_at(canonical, parse_moment(as_of))
        if version is not None and version < 1:
            raise InvalidInput(f"version must be 1 or more (got {version})")
        record = self._load(kind, canonical, version=version)
        if version is not None and record.version != version:
            raise NotFound(f"{canonical} has no version {version} (latest is {record.version})")
        data = {"id": record.ref, "version": record.version,
                "created_at": utc_iso(record.created_on),
                "updated_at": utc_iso(record.modified_on), **record.fields()}
        if isinstance(record, Nonconformity):
            return NonconformityView.model_validate(data)
        data["root_cause"] = cast("CorrectiveAction", record).root_cause
        return CorrectiveActionView.model_validate(data)

    def history(self, ref: str) -> list[HistoryEntry]:
        from capa.app.views import HistoryEntry

        # A user id names the account's own history (SPEC §3: NC, CA or user).
        # `history USER-jchen` and `history jchen` name the same account.
        is_record = is_ref(ref)
        name = ref.strip()
        if name.upper().startswith(USER_REF_PREFIX):
            name = name[len(USER_REF_PREFIX):]
        is_user = not is_record and is_user_id(name)
        canonical = user_ref(name) if is_user else self._canonical(ref)
        record_id = record_uuid(canonical)
        stored = self.recorder.select_events(record_id)
        if not stored:
            if is_user:
                raise NotFound(f"not found (user): {name.lower()!r} is not a user of this store")
            raise NotFound(f"{canonical} not found")
        positions = self._positions(record_id)
        entries: list[HistoryEntry] = []
        aggregate: Any = None
        for item in stored:
            domain_event: Any = self.mapper.to_domain_event(item)
            before = aggregate.fields() if aggregate is not None else {}
            aggregate = domain_event.mutate(aggregate)
            after = aggregate.fields()
            attributes = _attributes(domain_event)
            entries.append(HistoryEntry.model_validate({
                "position": positions.get(item.originator_version, 0),
                "version": item.originator_version,
                "time": utc_iso(domain_event.timestamp),
                "actor": domain_event.actor,
                "actor_name": self.full_name(domain_event.actor),
                "event_type": type(domain_event).__name__,
                "changes": _diff(before, after),
                "reason": attributes.get("reason"),
                "signature": _signature_of(attributes, domain_event),
            }))
        return entries

    def list_records(
        self, kind: str, *, statuses: Sequence[str] = (), severities: Sequence[str] = (),
        sources: Sequence[str] = (), overdue: bool = False,
    ) -> list[Any]:
        """NCs or CAs matching every given filter; a CA matches severity and source through
        its linked NCs, an NC is overdue when one of its CAs has an overdue action item.
        Answered from the read models (capa.readmodels), caught up first."""
        from capa.app.readside import list_records

        return list_records(self, kind, statuses=statuses, severities=severities,
                            sources=sources, overdue=overdue)

    def overdue(self) -> list[OverdueItem]:
        """Implemented CAs awaiting verification and open action items past due, from the read
        models."""
        from capa.app.readside import overdue_items

        return overdue_items(self)

    # -- internals -------------------------------------------------------------------------

    def _canonical(self, ref: str, prefix: str | None = None) -> str:
        return str(RecordRef.parse(ref, prefix))

    def _load(self, kind: type[R], ref: str, version: int | None = None) -> R:
        # NC and CA ids are checked against the kind asked for, so a CA id given where an NC
        # is expected is invalid input, not a missing record; other records have internal refs.
        prefix = _REF_PREFIXES.get(get_topic(kind))
        canonical = self._canonical(ref, prefix) if prefix else ref
        try:
            record: Any = self.repository.get(record_uuid(canonical), version=version)
        except AggregateNotFoundError:
            raise NotFound(f"{canonical} not found") from None
        if not isinstance(record, kind):
            raise NotFound(f"{canonical} not found")
        return record

    def _update(self, kind: type[R], ref: str, change: Any, *, command: str) -> WriteResult:
        self._authorise(command)
        record = self._load(kind, ref)
        change(record)
        self._save(record)
        return WriteResult(record.ref, record.status, record.version)

    def _save(self, *records: Aggregate) -> None:
        try:
            self.save(*records)
        except IntegrityError:
            raise Conflict(
                "the record changed while this command ran; nothing was written, retry is safe"
            ) from None

    def _exists(self, ref: str) -> bool:
        return bool(self.recorder.select_events(record_uuid(ref), lte=1, limit=1))

    def _create(self, prefix: str, build: Any, companions: list[Any] | None = None) -> Any:
        """Allocate the next free number of this year and save; a writer who lost the race to
        the same number collides on the record id and simply takes the next one."""
        year = dt.datetime.now(dt.UTC).year
        for _ in range(_CREATE_ATTEMPTS):
            ref = format_ref(prefix, year, self._next_number(prefix, year))
            record = build(ref)
            try:
                self.save(record, *(companions or []))
            except IntegrityError:
                if companions and any(self._changed(c) for c in companions):
                    raise Conflict(
                        "a linked record changed while this command ran; nothing was written, "
                        "retry is safe"
                    ) from None
                continue
            return record
        raise Conflict("could not allocate a record number; nothing was written, retry is safe")

    def _changed(self, record: Aggregate) -> bool:
        latest = self.recorder.select_events(record.id, desc=True, limit=1)
        return bool(latest) and latest[0].originator_version >= record.version

    def _next_number(self, prefix: str, year: int) -> int:
        # Numbers are allocated without gaps, so the first missing one is found by galloping
        # then bisecting: O(log n) point reads, no counter record for writers to fight over.
        def taken(n: int) -> bool:
            return self._exists(format_ref(prefix, year, n))

        high = 1
        while taken(high):
            high *= 2
        low = high // 2  # taken (or 0)
        while high - low > 1:
            mid = (low + high) // 2
            if taken(mid):
                low = mid
            else:
                high = mid
        return high

    def _version_at(self, ref: str, moment: dt.datetime) -> int:
        found = 0
        for item in self.recorder.select_events(record_uuid(ref)):
            event: Any = self.mapper.to_domain_event(item)
            if event.timestamp <= moment:
                found = item.originator_version
            else:
                break
        if not found:
            if not self._exists(ref):
                raise NotFound(f"{ref} not found")
            raise NotFound(f"{ref} did not exist yet at {utc_iso(moment)}")
        return found

    def _positions(self, record_id: UUID) -> dict[int, int]:
        from capa.adapters.eventlog import positions_of

        return positions_of(self.recorder, record_id)

    def _signature(self, record: Record, meaning: SignatureMeaning) -> dict[str, Any]:
        user = self._actor()
        # Both components are checked again at the moment of signing, even inside a session
        # (21 CFR 11.200(a)); a wrong password here counts towards the lockout like any other.
        password = _signing_password.get()
        if not password:
            raise NotPermitted("signing needs your password again (CAPA_PASSWORD or the prompt)",
                               "R10")
        self.authenticate(user, password)
        signature: dict[str, Any] = {
            "user_id": user, "full_name": self.full_name(user), "meaning": meaning.value,
            "content_sha256": record.content_digest(), "signed_version": record.version}
        account = self._user(user)
        if account.public_key is None:
            if self._digital_store():
                raise NotPermitted(f"{user} has no signing key, which this store requires; "
                                   "nothing was signed")
            # An account of a store made before digital signatures: the signature stays
            # password-attested, and history and verification report it as such.
            return signature
        from capa.audit.signatures import ALGORITHM, manifest_bytes, now_iso, sign

        key_id = _key_id(account.public_key)
        private = self._private_key(user, password, key_id)
        signed_at = now_iso()
        message = manifest_bytes(record=record.ref, version=record.version,
                                 content_sha256=signature["content_sha256"],
                                 meaning=meaning.value, signed_at=signed_at, user_id=user,
                                 full_name=signature["full_name"])
        return {**signature, "signed_at": signed_at, "algorithm": ALGORITHM, "key_id": key_id,
                "signature": sign(private, message)}

    # -- signing keys (SPEC §9.2) ------------------------------------------------------------

    def _user_keys(self) -> Any:
        from capa.adapters.userkeys import user_keys_for

        return self.__dict__.setdefault("_keys_port", user_keys_for(self.recorder))

    def _digital_store(self) -> bool:
        from capa.domain.store import STORE_REF, StoreRecord

        try:
            store = self._load(StoreRecord, STORE_REF)
        except NotFound:
            return False
        return bool(getattr(store, "signing", None))

    def _private_key(self, user: str, password: str, key_id: str) -> Any:
        from capa.app.keyring import unwrap

        stored = self._user_keys().get(user)
        if stored is None:
            raise NotPermitted(f"the signing key of {user} is missing from this store; "
                               "nothing was signed")
        return unwrap(stored.wrapped, password, user, key_id)

    def _admin_key(self, why: str) -> tuple[User, Any] | None:
        """The acting administrator and their private key, opened with the password asked
        again; None when they have no key (a store made before digital signatures)."""
        admin = self._user(self._actor())
        if admin.public_key is None:
            if self._digital_store():
                raise NotPermitted(f"{admin.user_id} has no signing key to {why} with")
            return None
        admin_password = _signing_password.get()
        if not admin_password:
            raise NotPermitted(f"this command needs your password again, to {why} "
                               "(CAPA_PASSWORD or the prompt)")
        # Checked like a signing password: a wrong one counts towards the lockout.
        self.authenticate(admin.user_id, admin_password)
        return admin, self._private_key(admin.user_id, admin_password,
                                        _key_id(admin.public_key))

    def _role_signer(self, account: User, change: str) -> Any:
        """What signs a role change of `account` with the acting administrator's key (SPEC
        §9.2), once the domain has checked it: a store writer cannot give themselves a role."""
        from capa.audit.signatures import now_iso, role_change_bytes, sign

        def authorise(role: str, version: int) -> dict[str, Any] | None:
            opened = self._admin_key(f"sign the {change} of a role")
            if opened is None:
                return None
            admin, private = opened
            signed_at = now_iso()
            message = role_change_bytes(user_id=account.user_id, change=change, role=role,
                                        version=version, signed_at=signed_at,
                                        admin=admin.user_id)
            return {"admin": admin.user_id, "signed_at": signed_at,
                    "key_id": _key_id(str(admin.public_key)),
                    "signature": sign(private, message)}

        return authorise

    def _endorsed_key(self, uid: str, full_name: str, roles: list[str], password: str
                      ) -> tuple[str | None, dict[str, Any] | None, WrappedKey | None]:
        """A new user's public key, endorsed with the acting administrator's key, whose
        password is asked again for it; the private key is stored encrypted under the new
        user's password. Nothing when the administrator has no key (a store made before
        digital signatures): the new account then signs password-attested like the others."""
        from capa.app import keyring
        from capa.audit.signatures import endorsement_bytes, now_iso, sign

        opened = self._admin_key("endorse the new user's signing key")
        if opened is None:
            return None, None, None
        admin, admin_key = opened
        key = keyring.new_key()
        public_key = keyring.public_key_b64(key)
        endorsed_at = now_iso()
        message = endorsement_bytes(user_id=uid, full_name=require_text(full_name, "full name"),
                                    roles=roles, public_key=public_key, endorsed_at=endorsed_at,
                                    admin=admin.user_id)
        return public_key, {"admin": admin.user_id, "endorsed_at": endorsed_at,
                            "key_id": _key_id(str(admin.public_key)),
                            "signature": sign(admin_key, message)}, _wrapped(uid, key, password)

    def _own_key(self, uid: str, password: str) -> Any:
        """The user's private key, or None when the account has no key (a store made before
        digital signatures); a stored key that does not open can sign nothing, and a store
        that requires signatures then refuses the change."""
        account = self._user(uid)
        if account.public_key is None:
            return None
        try:
            return self._private_key(uid, password, _key_id(account.public_key))
        except NotPermitted:
            if self._digital_store():
                raise NotPermitted(f"the signing key of {uid} does not open, so the password "
                                   "change cannot be signed; nothing was changed") from None
            return None

    def _account_signer(self, account: User, *, own: Any = None,
                        credential: str | None = None) -> Any:
        """What signs a deactivation or unlock of `account` with the acting administrator's
        key, or (`own`: the user's private key) the user's own password change, binding its
        `credential` (SPEC §9.2): a store writer can neither lock an administrator out nor
        re-open a locked account nor set a password."""
        from capa.audit.signatures import account_change_bytes, now_iso, sign

        def authorise(action: str, version: int) -> dict[str, Any] | None:
            if action == "passwd":
                if own is None:
                    return None
                signer, private = account, own
            else:
                opened = self._admin_key(f"sign the {action} of an account")
                if opened is None:
                    return None
                signer, private = opened
            signed_at = now_iso()
            message = account_change_bytes(user_id=account.user_id, action=action,
                                           version=version, signed_at=signed_at,
                                           signer=signer.user_id, credential=credential)
            return {"signer": signer.user_id, "signed_at": signed_at,
                    "key_id": _key_id(str(signer.public_key)),
                    "signature": sign(private, message)}

        return authorise

    def _evidence(
        self, paths: Sequence[str | Path]
    ) -> tuple[list[EvidenceFile], list[dict[str, Any]]]:
        files: list[EvidenceFile] = []
        entries: list[dict[str, Any]] = []
        for raw in paths:
            path = Path(raw)
            if not path.is_file():
                raise InvalidInput(f"evidence file {str(path)!r} does not exist")
            size = path.stat().st_size
            if size > MAX_EVIDENCE_BYTES:
                raise InvalidInput(f"evidence file {path.name!r} is larger than 25 MiB")
            content = path.read_bytes()
            digest = hashlib.sha256(content).hexdigest()
            ref = f"EVIDENCE-{digest}"
            if not self._exists(ref) and all(f.ref != ref for f in files):
                import base64

                from capa.domain.evidence import EvidenceFile

                files.append(EvidenceFile(ref=ref, sha256=digest, size=size,
                                          content_b64=base64.b64encode(content).decode()))
            import mimetypes

            media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            entries.append({"name": path.name, "size": size, "media_type": media_type,
                            "sha256": digest})
        return files, entries

    def evidence_content(self, sha256: str) -> bytes:
        import base64

        from capa.domain.evidence import EvidenceFile

        record = self._load(EvidenceFile, f"EVIDENCE-{sha256.lower()}")
        return base64.b64decode(record.content_b64)

    def evidence_list(self, ref: str) -> list[dict[str, Any]]:
        """The evidence files kept with a CA, or with the CAs linked to an NC (SPEC §10)."""
        from capa.app.evidence import evidence_of

        return evidence_of(self, ref)

    def evidence_file(self, ref: str, wanted: str) -> tuple[dict[str, Any], bytes]:
        """One evidence file of a record, by name or SHA-256, and its bytes, digest checked."""
        from capa.app.evidence import checked_content, chosen, evidence_of

        entry = chosen(evidence_of(self, ref), ref.strip().upper(), wanted)
        return entry, checked_content(self, entry)


def format_ref(prefix: str, year: int, number: int) -> str:
    return str(RecordRef.new(prefix, year, number))


def parse_moment(value: str) -> dt.datetime:
    """A date means the end of that day (UTC); a datetime without offset is UTC."""
    text = value.strip()
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            return dt.datetime.combine(day, dt.time.max, tzinfo=dt.UTC)
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"as-of must be a date YYYY-MM-DD or a datetime YYYY-MM-DDTHH:MM[:SS][Z] "
            f"(got {value!r})"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _wrapped(user: str, key: Any, password: str) -> WrappedKey:
    from capa.adapters.userkeys import WrappedKey
    from capa.app import keyring

    return WrappedKey(user, _key_id(keyring.public_key_b64(key)),
                      keyring.wrap(key, password, user))


def _key_id(public_key: str) -> str:
    from capa.app.keyring import key_id

    return key_id(public_key)


def _attributes(domain_event: Any) -> dict[str, Any]:
    return dict(vars(domain_event))


def _signature_of(attributes: dict[str, Any], domain_event: Any) -> dict[str, Any] | None:
    signature = attributes.get("signature")
    if not signature:
        return None
    # A digital signature carries the time it signed; an older one is dated by its event.
    return {"signed_at": utc_iso(domain_event.timestamp), **signature}


def _diff(before: dict[str, Any], after: dict[str, Any], path: str = "") -> list[dict[str, Any]]:
    """Field-level changes between two states: nested fields as dotted paths, list entries by
    their number (A1…) or position, appended entries as additions."""
    changes: list[dict[str, Any]] = []
    for key in [*after, *(k for k in before if k not in after)]:
        old, new = before.get(key), after.get(key)
        name = f"{path}{key}"
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            changes += _diff(old, new, name + ".")
        elif isinstance(old, list) and isinstance(new, list) and new[: len(old)] == old:
            changes.append({"field": name, "old": None, "new": new[len(old):]})
        elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
            for index, (was, now) in enumerate(zip(old, new, strict=True)):
                if was == now:
                    continue
                label = was.get("number", index + 1) if isinstance(was, dict) else index + 1
                if isinstance(was, dict) and isinstance(now, dict):
                    changes += _diff(was, now, f"{name}[{label}].")
                else:
                    changes.append({"field": f"{name}[{label}]", "old": was, "new": now})
        else:
            changes.append({"field": name, "old": old, "new": new})
    return changes
