"""Password checks (SPEC §9.5): a check reserved in the store, failures counted towards the
lockout, and the hash an account's events name."""

from __future__ import annotations

import hashlib
import random
import time

from eventsourcing.persistence import IntegrityError

from capa.app.core import Core
from capa.app.passwords import hash_password, verify_password
from capa.domain.errors import Conflict, NotPermitted
from capa.domain.user import MAX_FAILED_ATTEMPTS, User, credential_of, is_legacy_credential

NO_SUCH_USER_HASH = "scrypt$16384$8$1$" + "A" * 22 + "==$" + "A" * 43 + "="
#: Saves of a failed check tried before giving up: each parallel attempt on an account may
#: lose the race to the account's next version once.
_FAILURE_SAVE_ATTEMPTS = 40
#: How long a password check waits for parallel checks of the same account, and after how
#: many seconds a reserved check whose command died stops counting.
_CHECK_WAIT_SECONDS = 20
_CHECK_STALE_SECONDS = 30


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def new_password(password: str) -> tuple[str, str]:
    """A new password's hash and the credential naming it (hashing refuses a weak one)."""
    encoded = hash_password(password)
    return encoded, credential_of(encoded)


class Accounts:
    """The password check of the core's store, used to log in and again to sign (R10)."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def password_hash(self, account: User) -> str:
        """The hash an account's events name; a hash outside the log that no event names is
        never used, so writing that table cannot change who may log in (SPEC §9)."""
        if is_legacy_credential(account.credential):
            return account.credential  # held in the events by an earlier release
        found = self.core.credentials.get_hash(account.user_id, account.credential)
        # A missing or replaced row matches nothing: such an account cannot log in until an
        # administrator looks into it, rather than accepting a password the log never set.
        return found if found is not None and credential_of(found) == account.credential \
            else NO_SUCH_USER_HASH

    def authenticate(self, user: str, password: str) -> str:
        """Check a user id and password. Each check is first reserved in the store, atomically,
        and only while the failures and the checks under way stay below five, so that parallel
        guesses are counted one by one and none is checked once a run of five has locked the
        account (SPEC §9.5). A wrong password is recorded as LoginFailed (the
        fifth in a row locks the account) and then refused; the message never says which part
        was wrong, and nothing records the attempted password."""
        core = self.core
        uid = user.strip().lower()
        account = core.find_user(uid)
        if account is None:
            # The same scrypt work as for a real account, so timing does not reveal user ids.
            verify_password(password, NO_SUCH_USER_HASH)
            raise NotPermitted("unknown user id or wrong password")
        if account.is_service:
            # Before the check is reserved: a service account has no password to guess.
            raise NotPermitted(f"{account.user_id} is a service account: it has no password "
                               "and authenticates with an API token (CAPA_TOKEN)")
        # A forged account change is never acted on: neither the unlock nor the password it
        # claims lets anyone in (SPEC §9.2); `audit verify` names the event.
        if (forged := core.unsigned_account_change(account)) is not None:
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
            correct = verify_password(password, self.password_hash(account))
        except BaseException:
            core.credentials.release_check(account.user_id)
            raise
        if not correct:
            attempt = core.credentials.settle_check(account.user_id, failed=True)
            if self._record_failure(account.user_id, attempt=attempt, checked=True):
                raise NotPermitted(f"wrong password; {account.user_id} is now locked after "
                                   f"{MAX_FAILED_ATTEMPTS} failed attempts")
            raise NotPermitted("unknown user id or wrong password")
        core.credentials.settle_check(account.user_id, failed=False)
        if account.failed_attempts:
            with core.acting_as(account.user_id):
                account.password_verified()
                core.persist(account)
        return account.user_id

    def _reserve_check(self, account: User) -> str:
        """Reserve a password check in the store: "go" or "locked"; while checks under way
        could fill the run, wait for them (they are tens of milliseconds each)."""

        deadline = time.monotonic() + _CHECK_WAIT_SECONDS
        while True:
            outcome = self.core.credentials.reserve_check(
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

        for _ in range(_FAILURE_SAVE_ATTEMPTS):
            account = self.core.user(uid)
            with self.core.acting_as(uid):
                if checked:
                    account.login_failed(attempt)
                else:
                    account.lock_if_due(attempt)
            try:
                self.core.save(account)
            except IntegrityError:
                time.sleep(random.uniform(0.005, 0.05))  # noqa: S311 - back-off, not a secret
                continue
            return account.status == "locked"
        raise Conflict("the account changed while this command ran; retry is safe")
