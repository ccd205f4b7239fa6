"""The core of the capa application: one event store, the acting user, the permission check
every operation makes, and loading, saving and numbering records.

Feature services (capa.app.identity, capa.app.nonconformities, ...) each take the core and
run their operations on it; the core knows none of them.

Size: the permission check and the signature walk of the account events it relies on belong
with the acting user, and loading, saving and numbering records with the store they use.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, Mapper, StoredEvent
from eventsourcing.utils import get_topic

from capa.app.permissions import AFTER_RESET, OPEN_OPERATIONS, allowed_roles, permits
from capa.domain.errors import Conflict, IntegrityFailure, InvalidInput, NotFound, NotPermitted
from capa.domain.record import Record, actor_id, record_uuid, utc_iso
from capa.domain.refs import RecordRef, is_ref
from capa.domain.store import STORE_REF, StoreRecord
from capa.domain.user import User, UserStatus, is_user_id, user_ref

if TYPE_CHECKING:
    from capa.adapters.credentials import CredentialStore
    from capa.adapters.idempotency import Claim, IdempotencyKeys
    from capa.readmodels.projection import ReadModels

R = TypeVar("R", bound=Record)

_CREATE_ATTEMPTS = 20
#: The kinds of record whose ids are NC-… and CA-…, named by topic: a command imports only the
#: record classes it works with (start-up time, SPEC §7 P1).
_REF_PREFIXES = {"capa.domain.nonconformity:Nonconformity": "NC",
                 "capa.domain.corrective_action:CorrectiveAction": "CA"}

#: The password presented for this command, checked again when a signature is made (R10).
_signing_password: ContextVar[str | None] = ContextVar("capa_signing_password", default=None)
#: The idempotency key of the request being served, committed with its first save (SPEC §11).
_claim: ContextVar[Claim | None] = ContextVar("capa_idempotency_claim", default=None)


def today() -> str:
    """Today's date in UTC, the calendar every stored date is read against."""
    return dt.datetime.now(dt.UTC).date().isoformat()


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


class Core(Application[UUID]):
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

    @contextmanager
    def claiming(self, claim: Claim) -> Iterator[Claim]:
        """Run an operation whose first save commits `claim`, a request's idempotency key, in
        the transaction of its events (capa.adapters.idempotency): the key is used if and only
        if the events are written. A save that finds the key taken raises KeyTaken."""
        token = _claim.set(claim)
        try:
            yield claim
        finally:
            _claim.reset(token)

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        claim = _claim.get()
        if claim is None or claim.committed:
            return super().save(*objs, **kwargs)
        recordings = super().save(*objs, idempotency=claim, **kwargs)
        claim.committed = True
        return recordings

    def actor(self) -> str:
        """The acting user's id; NotPermitted when no user acts."""
        user = actor_id.get()
        if not user:
            raise NotPermitted("no acting user: log in (capa login) or set CAPA_USER and "
                               "CAPA_PASSWORD")
        return user

    @staticmethod
    def signing_password() -> str | None:
        """The password the acting user presented for this command, if any (R10)."""
        return _signing_password.get()

    def full_name(self, user: str) -> str:
        """The printed name of a user (R9); a user id that is not an account prints as itself.
        Names never change once added, so they are cached for long histories."""
        names: dict[str, str] = self.__dict__.setdefault("_full_names", {})
        if user not in names:
            found = self.find_user(user) if is_user_id(user) else None
            if found is None:
                return user
            names[user] = found.full_name
        return names[user]

    def find_user(self, user: str) -> User | None:
        try:
            found: Any = self.repository.get(record_uuid(user_ref(user)))
        except (AggregateNotFoundError, InvalidInput):
            return None
        return found if isinstance(found, User) else None

    def user(self, user: str) -> User:
        found = self.find_user(user)
        if found is None:
            raise NotFound(f"not found (user): {user!r} is not a user of this store")
        return found

    def has_role(self, user: str, role: str) -> bool:
        account = self.find_user(user)
        return account is not None and role in account.roles

    # -- the permission check (SPEC §2, §9.6) -----------------------------------------------

    def authorise(self, operation: str) -> str:
        """Check the acting user against the one permission table (capa.app.permissions)
        before an operation runs, reads included, and return their id. An operation the
        table does not name is refused for everyone (default deny, SPEC §9.6); one it declares
        open runs for anyone (the acting user's id, or "" when no one acts)."""
        if operation in OPEN_OPERATIONS:
            return actor_id.get() or ""
        if not allowed_roles(operation):
            raise NotPermitted(f"{operation} may not be run by anyone: the permission table "
                               "does not name it")
        user = self.actor()
        account = self.find_user(user)
        if account is None:
            raise NotPermitted(f"{user} is not a user of this store")
        account.require_usable()
        if account.must_change_password and operation not in AFTER_RESET:
            raise NotPermitted(f"the password of {user} was reset by an administrator: choose "
                               "your own first (capa user passwd)")
        if not permits(account.roles, operation):
            needed = ", ".join(sorted(allowed_roles(operation))) or "none"
            held = ", ".join(account.roles) or "none"
            raise NotPermitted(f"{user} (roles: {held}) may not {operation} (needs: {needed})")
        # Reads too: an account whose UserAdded no administrator signed (written past capa)
        # holds no role at all in the walk, and reads nothing either.
        signed = self.signed_roles(user)
        if signed is not None and not signed:
            raise NotPermitted(f"{user} may not {operation}: the account holds no role an "
                               "administrator signed (added or changed past capa); run capa "
                               "audit verify")
        if signed is not None and not permits(sorted(signed), operation):
            # The account's events give it a role no administrator signed: written into the
            # store past capa. Refused, and `audit verify` names the event (exit 6).
            raise NotPermitted(f"{user} may not {operation}: the role it needs was not granted "
                               "by a signed administrator's change; run capa audit verify")
        return user

    def signed_roles(self, user: str) -> set[str] | None:
        """The roles of `user` as the signature walk of the account events gives them (SPEC
        §9.2): only changes signed by an administrator trusted at that point count; None in a
        store made before digital signatures. It reads the account events only, once per
        process (about 70 ms in a store of 100,000 events), so a write can afford it."""
        # Start-up time (SPEC §7 P1): the walk's cryptography loads only for a write.
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

    def unsigned_account_change(self, account: User) -> str | None:
        """Why `account` may not be used as its events fold it: a deactivation, unlock or
        password change in its history that the signature walk refused (written past capa);
        None when there is none, or in a store made before digital signatures. It reuses the
        role check's walk of the account events, only for an account that holds such a change,
        so that most logins need no walk."""
        if not account._signed_change or self.signed_roles(account.user_id) is None:
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
            return (f"the password of {uid} was set by a change neither that user nor an "
                    f"administrator signed{check}")
        from capa.audit.signature_walk import key_id

        if account.public_key is not None and signed.key_id != key_id(account.public_key):
            return (f"the signing key of {uid} was set by a change no administrator "
                    f"signed{check}")
        return None

    # -- the store's other tables ----------------------------------------------------------

    @property
    def credentials(self) -> CredentialStore:
        """The store's tables outside the event log: password hashes, the run of failed
        checks of each account, and session use (capa.adapters.credentials)."""
        found: CredentialStore | None = self.__dict__.get("_credentials")
        if found is None:
            # Start-up time (SPEC §7 P1): only commands that check a password load it.
            from capa.adapters.credentials import credential_store

            found = self.__dict__["_credentials"] = credential_store(self.recorder)
        return found

    @property
    def idempotency_keys(self) -> IdempotencyKeys:
        """The idempotency keys of the server's writes (capa.adapters.idempotency)."""
        found: IdempotencyKeys | None = self.__dict__.get("_idempotency_keys")
        if found is None:
            from capa.adapters.idempotency import IdempotencyKeys

            found = self.__dict__["_idempotency_keys"] = IdempotencyKeys(self.recorder)
        return found

    def written_result(self, records: list[tuple[str, int]]) -> dict[str, Any]:
        """What a write that committed these records (hex id, version) returns, read back from
        the store: the first record's id, status and version (SPEC §3)."""
        record_id, version = records[0]
        record: Any = self.repository.get(UUID(record_id), version=version)
        return WriteResult(str(getattr(record, "ref", record_id)),
                           str(getattr(record, "status", "")), version).as_dict()

    def user_keys(self) -> Any:
        """The users' private signing keys, each encrypted under its user's password."""
        # Start-up time (SPEC §7 P1): only commands that sign load it.
        from capa.adapters.userkeys import user_keys_for

        return self.__dict__.setdefault("_keys_port", user_keys_for(self.recorder))

    @property
    def read_models(self) -> ReadModels:
        """The read tables that follow the event log (capa.readmodels)."""
        found: ReadModels | None = self.__dict__.get("_read_models")
        if found is None:
            # Start-up time (SPEC §7 P1): a command that writes one record never reads them.
            from capa.readmodels.projection import ReadModels

            found = self.__dict__["_read_models"] = ReadModels(self)
        return found

    def store_info(self) -> dict[str, Any]:

        store = self.load(StoreRecord, STORE_REF)
        return {"organisation": store.organisation, "profile": _profile_of(store),
                "tool_version": store.tool_version,
                "key_fingerprint": store.key_fingerprint, "created_at": utc_iso(store.created_on)}

    def profile(self) -> str:
        """The standard the store is run under (SPEC §12): iso9001 unless it says otherwise."""
        try:
            return _profile_of(self.load(StoreRecord, STORE_REF))
        except NotFound:
            return "iso9001"

    def digital_store(self) -> bool:
        """Whether the store was made with digital signatures (SPEC §9.2)."""

        try:
            store = self.load(StoreRecord, STORE_REF)
        except NotFound:
            return False
        return bool(getattr(store, "signing", None))

    # -- records ---------------------------------------------------------------------------

    @staticmethod
    def canonical(ref: str, prefix: str | None = None) -> str:
        return str(RecordRef.parse(ref, prefix))

    @staticmethod
    def is_record_id(ref: str) -> bool:
        return is_ref(ref)

    def load(self, kind: type[R], ref: str, version: int | None = None) -> R:
        # NC and CA ids are checked against the kind asked for, so a CA id given where an NC
        # is expected is invalid input, not a missing record; other records have internal refs.
        prefix = _REF_PREFIXES.get(get_topic(kind))
        canonical = self.canonical(ref, prefix) if prefix else ref
        try:
            record: Any = self.repository.get(record_uuid(canonical), version=version)
        except AggregateNotFoundError:
            raise NotFound(f"{canonical} not found") from None
        if not isinstance(record, kind):
            raise NotFound(f"{canonical} not found")
        return record

    def update(self, kind: type[R], ref: str, change: Any) -> WriteResult:
        """Load a record, change it and save it (the operation has been authorised)."""
        record = self.load(kind, ref)
        change(record)
        self.persist(record)
        return WriteResult(record.ref, record.status, record.version)

    def persist(self, *records: Aggregate) -> None:
        """Save records in one transaction; a lost race is a conflict (exit 5)."""
        try:
            self.save(*records)
        except IntegrityError:
            raise Conflict(
                "the record changed while this command ran; nothing was written, retry is safe"
            ) from None

    def exists(self, ref: str) -> bool:
        return bool(self.recorder.select_events(record_uuid(ref), lte=1, limit=1))

    def create(self, prefix: str, build: Any, companions: list[Any] | None = None) -> Any:
        """Allocate the next free number of this year and save; a writer who lost the race to
        the same number collides on the record id and simply takes the next one."""
        year = dt.datetime.now(dt.UTC).year
        for _ in range(_CREATE_ATTEMPTS):
            ref = format_ref(prefix, year, self.next_number(prefix, year))
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

    def next_number(self, prefix: str, year: int) -> int:
        """The first free number of `prefix` records in `year`."""
        # Numbers are allocated without gaps, so the first missing one is found by galloping
        # then bisecting: O(log n) point reads, no counter record for writers to fight over.
        def taken(n: int) -> bool:
            return self.exists(format_ref(prefix, year, n))

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

    def version_at(self, ref: str, moment: dt.datetime) -> int:
        found = 0
        for item in self.recorder.select_events(record_uuid(ref)):
            event: Any = self.mapper.to_domain_event(item)
            if event.timestamp <= moment:
                found = item.originator_version
            else:
                break
        if not found:
            if not self.exists(ref):
                raise NotFound(f"{ref} not found")
            raise NotFound(f"{ref} did not exist yet at {utc_iso(moment)}")
        return found


def _profile_of(store: StoreRecord) -> str:
    # A snapshot of the store record taken before profiles has no such field.
    return str(getattr(store, "profile", None) or "iso9001")
