"""Who may run which operation (SPEC §2): the one table the application consults.

Every operation of the application's services (capa.app.operations) names its entry here; the
command line names the same entries for its commands, and asks the table only whether a command
is named at all, so that an unnamed command is refused before any password is checked."""

from __future__ import annotations

from capa.domain.user import Role

ADMIN, QUALITY, OWNER, REPORTER, AUDITOR = (r.value for r in Role)
EVERYONE = frozenset(r.value for r in Role)
#: Every role that may write a record: an action may be assigned to any of them (SPEC §10).
WRITERS = EVERYONE - {AUDITOR}

#: Command name -> roles allowed to run it. Every command is named here (or, if it runs without
#: a logged-in user, in UNAUTHENTICATED_COMMANDS): a command missing from both is refused for
#: everyone, so a new command cannot slip through unguarded (SPEC §9.6). Record-level checks
#: come on top:
#: investigate and plan need the CA's owner (or quality), complete the item's assignee or the
#: CA's owner, and R2/R3 are enforced by the records themselves.
PERMISSIONS: dict[str, frozenset[str]] = {
    "nc raise": frozenset({REPORTER, QUALITY}),
    "nc contain": frozenset({REPORTER, QUALITY}),
    "nc assess": frozenset({QUALITY}),
    "nc link": frozenset({QUALITY}),
    "nc close": frozenset({QUALITY}),
    "nc cancel": frozenset({QUALITY}),
    "nc reopen": frozenset({QUALITY}),
    "nc amend": frozenset({QUALITY}),
    "ca open": frozenset({QUALITY}),
    "ca investigate": frozenset({OWNER, QUALITY}),
    "ca plan": frozenset({OWNER, QUALITY}),
    "ca approve": frozenset({QUALITY}),
    # Any writer may be an assignee; the record then admits only the assignee, the owner, or
    # quality recording the completion on their behalf.
    "ca complete": WRITERS,
    "ca extend": frozenset({QUALITY}),
    "ca plan-check": frozenset({OWNER, QUALITY}),
    "ca verify": frozenset({QUALITY}),
    "ca impact": frozenset({OWNER, QUALITY}),
    "ca close": frozenset({QUALITY}),
    "ca cancel": frozenset({QUALITY}),
    "ca reopen": frozenset({QUALITY}),
    "import": frozenset({REPORTER, QUALITY}),
    "user add": frozenset({ADMIN}),
    "user grant": frozenset({ADMIN}),
    "user revoke": frozenset({ADMIN}),
    "user unlock": frozenset({ADMIN}),
    "user deactivate": frozenset({ADMIN}),
    # A lost password (21 CFR 11.300(c)): an administrator sets a temporary one, with a new
    # signing key, and signs the reset.
    "user reset-password": frozenset({ADMIN}),
    "user list": frozenset({ADMIN, AUDITOR}),
    # Service accounts and their API tokens (SPEC §11): managed by administrators only.
    "user add-service": frozenset({ADMIN}),
    "user token issue": frozenset({ADMIN}),
    "user token list": frozenset({ADMIN, AUDITOR}),
    "user token revoke": frozenset({ADMIN}),
    # An administrator sets anyone's address; any other writer only their own (the operation
    # checks it). Auditors receive no reminders and write nothing.
    "user email": WRITERS,
    # Changing one's own password, logging in and out: any account that may log in.
    "user passwd": EVERYONE,
    "login": EVERYONE,
    "logout": EVERYONE,
    "whoami": EVERYONE,
    # Reads: every active role, auditors included.
    "nc show": EVERYONE,
    "nc list": EVERYONE,
    "ca show": EVERYONE,
    "ca list": EVERYONE,
    "history": EVERYONE,
    "overdue": EVERYONE,
    "report": EVERYONE,
    "dashboard": EVERYONE,
    "export": EVERYONE,
    "evidence list": EVERYONE,
    "evidence get": EVERYONE,
    # Auditors never change the store: a checkpoint (which also catches the ledger up) and a
    # rebuild of the read tables are taken by quality or admin.
    "readmodels rebuild": frozenset({ADMIN, QUALITY}),
    # Sending reminders records each message sent (SPEC §12).
    "notify": frozenset({ADMIN, QUALITY}),
    # Outgoing webhooks (SPEC §11): an administrator decides which systems learn what; the
    # subscriptions and their deliveries are read by the roles that review the trail, and a
    # delivery pass (which records each attempt) is run by quality or admin.
    "webhook add": frozenset({ADMIN}),
    "webhook remove": frozenset({ADMIN}),
    "webhook list": frozenset({ADMIN, QUALITY, AUDITOR}),
    "webhook deliveries": frozenset({ADMIN, QUALITY, AUDITOR}),
    "webhook deliver": frozenset({ADMIN, QUALITY}),
    "audit checkpoint": frozenset({ADMIN, QUALITY}),
    "audit verify": EVERYONE,
    "audit export": EVERYONE,
    "audit prove": EVERYONE,
    "audit vkey": EVERYONE,
    "audit consistency": EVERYONE,
    # The audit-trail review (EU GMP Annex 11 §9): listing it is a read, for the roles that
    # review; signing it records an event, so auditors, who never change the store, may not.
    "audit review": frozenset({ADMIN, QUALITY, AUDITOR}),
    "audit review --sign": frozenset({ADMIN, QUALITY}),
    # The management review pack (ISO 9001 9.3.2, ISO 13485 5.6.2): a read.
    "management-review": frozenset({ADMIN, QUALITY, AUDITOR}),
    "store copy": frozenset({ADMIN}),
    "store profile": frozenset({ADMIN}),
    "store info": EVERYONE,
}

#: What an account whose password an administrator reset may do until its user has chosen their
#: own (capa user passwd): nothing else, reads included (21 CFR 11.300(c)).
AFTER_RESET = frozenset({"user passwd", "login", "logout", "whoami"})

#: Commands that record an electronic signature: the password is checked again (R10). A
#: command that signs only with its `--sign` flag is named with it ("audit review --sign").
SIGNING_COMMANDS = frozenset({"nc close", "ca approve", "ca verify", "ca close",
                              "audit review --sign"})

#: Operations that run without an acting user, and why; each is also in the table above or in
#: UNAUTHENTICATED_COMMANDS. Nothing else is open: an operation is checked against the table.
OPEN_OPERATIONS: dict[str, str] = {
    # No account exists before the store does: `init` creates the store and its first
    # administrator in one save (and `demo` tells its story from there).
    "init": "creates the store and its first administrator",
    # Logging in, and checking the password or session that names the acting user of every
    # other command, is what establishes a user in the first place.
    "login": "establishes the acting user",
    # `capa logout` ends the session its file names, without asking for a password: the
    # session's token is the proof, and ending a session only ever takes access away.
    "logout": "ends the session whose token is given",
}

#: Commands that run without a logged-in user (SPEC §2 exemptions).
#: A witness works on its own folder, on the auditor's machine, without any store.
#: `serve` opens the store for the server, which then checks every request's user itself.
UNAUTHENTICATED_COMMANDS = frozenset({"init", "demo", "validate", "audit verify-bundle", "login",
                                      "audit witness init", "audit witness cosign", "serve"})


def allowed_roles(command: str) -> frozenset[str]:
    """Roles that may run a command: none for a command the table does not name."""
    return PERMISSIONS.get(command, frozenset())


def is_named(command: str) -> bool:
    """Whether the table names the command, as one that needs a role or as one that runs
    without a logged-in user; any other command is refused for everyone."""
    return command in PERMISSIONS or command in UNAUTHENTICATED_COMMANDS


def permits(roles: list[str] | frozenset[str], command: str) -> bool:
    return bool(set(roles) & allowed_roles(command))
