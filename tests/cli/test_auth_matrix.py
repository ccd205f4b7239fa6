"""Authentication and the role x command matrix through the real command line.

A store holding one user per role and a record in every state a command needs is built once
per back end (SQLite and PostgreSQL), then copied for each test. Every refused attempt must exit
4 and write no event at all; wrong passwords are the one exception, and they write exactly one
LoginFailed event.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from unittest import mock
from urllib.parse import unquote, urlsplit

import pytest

from capa.adapters.target import parse_target
from capa.app.application import CapaApplication
from capa.app.permissions import allowed_roles
from capa.app.store import open_store
from capa.audit.keys import create_store_key
from capa.domain.errors import NotPermitted
from tests.support.backends import (
    clone_target,
    discard_target,
    new_target,
    query,
    store_exists,
    stored_bytes,
)
from tests.support.cli import Outcome, run_capa

PASSWORD = "matrix-password-123"
NEW_PASSWORD = "another-password-456"
WRONG = "not-the-password-789"
ROLES = ("admin", "quality", "owner", "reporter", "auditor")
#: Every role, and an active account that holds none (it may run nothing).
ACCOUNTS = (*ROLES, "norole")
USER = {role: f"{role}1" for role in ACCOUNTS}
OWNER = USER["owner"]


def in_days(days: int) -> str:
    return (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=days)).isoformat()


class Store:
    """A store (SQLite file or PostgreSQL database; a copy of the template or empty), and a way
    to run `capa` against it as someone, in the test's folder."""

    def __init__(self, folder: Path, target: str, refs: dict[str, str],
                 key: Path | None = None) -> None:
        self.folder = folder
        self.target = target
        self.sessions = folder / "sessions"
        self.refs = refs
        # A copy of the template shares its key and gets the (empty) checkpoint log that
        # `capa init` makes; an empty place gets both from `capa init` itself.
        self.key = key or folder / "store.key"
        self.checkpoints = folder / "checkpoints"
        if key is not None:
            self.checkpoints.touch()

    def run(self, *args: str, user: str | None = None, password: str | None = PASSWORD,
            **extra: str) -> Outcome:
        env: dict[str, str | None] = {
            "CAPA_DB": self.target, "CAPA_USER": user, "CAPA_PASSWORD": password if user
            else None, "CAPA_SESSION_DIR": str(self.sessions), "CAPA_NEW_PASSWORD": None,
            "CAPA_DEBUG": None, "CAPA_KEY": str(self.key),
            "CAPA_CHECKPOINTS": str(self.checkpoints), **extra,
        }
        outcome = run_capa(args, env=env, cwd=self.folder)
        assert "Traceback" not in outcome.stdout + outcome.stderr
        return outcome

    def events(self) -> list[tuple[str, str]]:
        """(topic, state) of every stored event, in order."""
        rows = query(self.target, "SELECT topic, state FROM stored_events ORDER BY rowid")
        return [(str(t), bytes(s).decode("utf-8", "replace")) for t, s in rows]

    def raw_bytes(self) -> bytes:
        return stored_bytes(self.target)

    def contents(self) -> list[tuple[str, list[tuple[object, ...]]]]:
        """Every row of every table (events, ledger, read tables, credentials), to show nothing
        changed; but the password checks under way and the sessions' last use, which checking
        who is asking updates before any permission is looked at."""
        if parse_target(self.target).kind == "postgres":
            listed = "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
        else:
            listed = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1"
        tables = [str(t) for (t,) in query(self.target, listed)
                  if t not in ("capa_login_attempts", "capa_sessions")]
        return [(t, sorted(query(self.target, f'SELECT * FROM "{t}"'), key=repr))
                for t in tables]


def _build(target: str, key: Path) -> dict[str, str]:
    app = open_store(target, create=True)
    try:
        # The template's webhook gets its key beside the template's store key.
        with mock.patch.dict(os.environ, {"CAPA_WEBHOOK_KEY": f"{key}.webhook-key"}):
            return _records(app, create_store_key(key))
    finally:
        app.close()


def _records(app: CapaApplication, fingerprint: str) -> dict[str, str]:
    app.identity.initialise("Matrix Medical", fingerprint, admin=USER["admin"],
                            full_name="Ada Admin",
                            password=PASSWORD)

    with app.acting_as(USER["admin"], PASSWORD):
        for role in ROLES[1:]:
            app.identity.add_user(USER[role], full_name=f"{role.title()} One", roles=[role],
                                  password=PASSWORD)
        app.identity.add_user("spare1", full_name="Spare One", roles=["reporter"],
                              password=PASSWORD)
        app.identity.add_user("locked1", full_name="Locked One", roles=["reporter"],
                              password=PASSWORD)
        app.identity.add_user(USER["norole"], full_name="Norole One", roles=["reporter"],
                              password=PASSWORD)
        app.identity.revoke_role(USER["norole"], "reporter")
        # A service account with a live token (SPEC §11), for the token commands.
        app.service_accounts.add_service("svc1", full_name="MES line 1", roles=["reporter"])
        app.service_accounts.issue_token("svc1", label="line 1")
    for _ in range(5):
        with contextlib.suppress(NotPermitted):
            app.identity.authenticate("locked1", WRONG)
    refs: dict[str, str] = {}

    def raise_nc() -> str:
        with app.acting_as(USER["reporter"], PASSWORD):
            return app.nonconformities.raise_nc(title="Cracked housing",
                                                description="Crack at boss B2",
                                                source="process", severity="major").id

    with app.acting_as(USER["quality"], PASSWORD):
        refs["NC_OPEN"] = raise_nc()
        refs["NC_NOCA"] = raise_nc()
        app.nonconformities.assess_nc(refs["NC_NOCA"], impact=1, likelihood=1, capa_required=False,
                                      rationale="Isolated")
        refs["NC_CA"] = raise_nc()
        app.nonconformities.assess_nc(refs["NC_CA"], impact=3, likelihood=3, capa_required=True)
        refs["NC_CANCELLED"] = raise_nc()
        app.nonconformities.cancel_nc(refs["NC_CANCELLED"], reason="Duplicate")
        for name in ("CA_OPEN", "CA_INVESTIGATED", "CA_PLANNED", "CA_APPROVED",
                     "CA_IMPLEMENTED", "CA_VERIFIED", "CA_CANCELLED"):
            refs[name] = app.corrective_actions.open_ca(title=name, problem="Boss cracks",
                                                        owner=OWNER).id
        app.corrective_actions.cancel_ca(refs["CA_CANCELLED"], reason="Superseded")
    steps = ("CA_INVESTIGATED", "CA_PLANNED", "CA_APPROVED", "CA_IMPLEMENTED", "CA_VERIFIED")
    with app.acting_as(OWNER, PASSWORD):
        for name in steps:
            app.corrective_actions.investigate_ca(refs[name], method="other", category="man",
                                                  root_cause="Worn")
        for name in steps[1:]:
            app.corrective_actions.plan_ca(refs[name], action="Replace insert", assignee=OWNER,
                                           due=in_days(10),
                                           action_type="corrective")
    with app.acting_as(USER["quality"], PASSWORD):
        for name in steps[2:]:
            app.corrective_actions.approve_ca(refs[name])
    with app.acting_as(OWNER, PASSWORD):
        for name in steps[3:]:
            app.corrective_actions.complete_action(refs[name], "A1", note="Done")
    with app.acting_as(USER["quality"], PASSWORD):
        app.corrective_actions.verify_ca(refs["CA_VERIFIED"], effective=True, note="No recurrence")
    with app.acting_as(USER["admin"], PASSWORD):
        refs["WEBHOOK"] = app.webhooks.add("https://erp.example/capa", events=["nc.*"])["id"]
    return refs


@pytest.fixture(scope="module")
def templates() -> dict[str, tuple[str, dict[str, str], Path]]:
    """Per back end, the store every test of the matrix starts from, and its record ids."""
    return {}


@pytest.fixture
def store(tmp_path: Path, backend: str,
          templates: dict[str, tuple[str, dict[str, str], Path]],
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """A copy of the template store, on the test's back end, with the template's key."""
    if backend not in templates:
        folder = tmp_path_factory.mktemp(f"matrix-{backend}")
        target = new_target(backend, folder)
        templates[backend] = (target, _build(target, folder / "matrix.key"), folder / "matrix.key")
    template, refs, key = templates[backend]
    copy = Store(tmp_path, clone_target(backend, template, tmp_path), refs, key)
    yield copy
    discard_target(copy.target)


# -- the matrix -------------------------------------------------------------------------------

#: command name -> arguments (record placeholders in braces) and extra environment.
COMMANDS: dict[str, tuple[list[str], dict[str, str]]] = {
    "nc raise": (["nc", "raise", "--title", "T", "--description", "D", "--source", "process",
                  "--severity", "minor"], {}),
    "nc contain": (["nc", "contain", "{NC_OPEN}", "--action", "Lot held"], {}),
    "nc assess": (["nc", "assess", "{NC_OPEN}", "--impact", "2", "--likelihood", "2",
                   "--capa-required"], {}),
    "nc link": (["nc", "link", "{NC_CA}", "{CA_OPEN}"], {}),
    "nc close": (["nc", "close", "{NC_NOCA}"], {}),
    "nc cancel": (["nc", "cancel", "{NC_OPEN}", "--reason", "Duplicate"], {}),
    "nc reopen": (["nc", "reopen", "{NC_CANCELLED}", "--reason", "Recurred"], {}),
    "nc amend": (["nc", "amend", "{NC_OPEN}", "--field", "lot", "--value", "L9",
                  "--reason", "Misread"], {}),
    "nc show": (["nc", "show", "{NC_OPEN}"], {}),
    "nc list": (["nc", "list"], {}),
    "ca open": (["ca", "open", "--title", "T", "--problem", "P", "--owner", OWNER], {}),
    "ca investigate": (["ca", "investigate", "{CA_OPEN}", "--method", "other", "--root-cause",
                        "Worn", "--category", "man"], {}),
    "ca plan": (["ca", "plan", "{CA_INVESTIGATED}", "--action", "A", "--assignee", OWNER,
                 "--due", in_days(9), "--type", "corrective"], {}),
    "ca approve": (["ca", "approve", "{CA_PLANNED}"], {}),
    "ca complete": (["ca", "complete", "{CA_APPROVED}", "A1", "--note", "Done"], {}),
    "ca extend": (["ca", "extend", "{CA_APPROVED}", "A1", "--due", in_days(30), "--reason",
                   "Supplier delay"], {}),
    "ca plan-check": (["ca", "plan-check", "{CA_APPROVED}", "--criteria", "No recurrence",
                       "--due", in_days(30)], {}),
    "ca verify": (["ca", "verify", "{CA_IMPLEMENTED}", "--effective", "--note", "OK"], {}),
    "ca impact": (["ca", "impact", "{CA_VERIFIED}", "--statement", "No adverse effect"], {}),
    "ca close": (["ca", "close", "{CA_VERIFIED}"], {}),
    "ca cancel": (["ca", "cancel", "{CA_OPEN}", "--reason", "Superseded"], {}),
    "ca reopen": (["ca", "reopen", "{CA_CANCELLED}", "--reason", "Recurred"], {}),
    "ca show": (["ca", "show", "{CA_OPEN}"], {}),
    "ca list": (["ca", "list"], {}),
    "history": (["history", "{NC_OPEN}"], {}),
    "evidence list": (["evidence", "list", "{CA_VERIFIED}"], {}),
    "overdue": (["overdue"], {}),
    "user add": (["user", "add", "newbie", "--full-name", "New Bie", "--role", "reporter"],
                 {"CAPA_NEW_PASSWORD": NEW_PASSWORD}),
    "user grant": (["user", "grant", "spare1", "owner"], {}),
    "user revoke": (["user", "revoke", "spare1", "reporter"], {}),
    "user unlock": (["user", "unlock", "locked1"], {}),
    "user deactivate": (["user", "deactivate", "spare1"], {}),
    "user reset-password": (["user", "reset-password", "spare1", "--reason", "Lost it"],
                            {"CAPA_NEW_PASSWORD": NEW_PASSWORD}),
    "user list": (["user", "list"], {}),
    "user add-service": (["user", "add-service", "newsvc", "--name", "New Line", "--role",
                          "reporter"], {}),
    "user token issue": (["user", "token", "issue", "svc1", "--label", "spare"], {}),
    "user token list": (["user", "token", "list", "svc1"], {}),
    "user token revoke": (["user", "token", "revoke", "svc1", "T1", "--reason", "Replaced"], {}),
    "user email": (["user", "email", "spare1", "spare1@northwind.example"], {}),
    "notify": (["notify", "--dry-run"], {}),
    "webhook add": (["webhook", "add", "https://erp.example/capa", "--event", "nc.raised"], {}),
    "webhook remove": (["webhook", "remove", "{WEBHOOK}", "--reason", "ERP replaced"], {}),
    "webhook list": (["webhook", "list"], {}),
    "webhook deliveries": (["webhook", "deliveries"], {}),
    "webhook deliver": (["webhook", "deliver", "--dry-run"], {}),
    "user passwd": (["user", "passwd"], {"CAPA_NEW_PASSWORD": NEW_PASSWORD}),
    "whoami": (["whoami"], {}),
    "readmodels rebuild": (["readmodels", "rebuild"], {}),
    "audit checkpoint": (["audit", "checkpoint"], {}),
    "audit verify": (["audit", "verify"], {}),
    "audit prove": (["audit", "prove", "{NC_OPEN}"], {}),
    "audit review": (["audit", "review", "--from", in_days(-1), "--to", in_days(0)], {}),
    "audit review --sign": (["audit", "review", "--from", in_days(-1), "--to", in_days(0),
                             "--sign"], {}),
    "management-review": (["management-review", "--from", in_days(-40), "--to", in_days(0),
                           "--out", "pack.md"], {}),
    "store info": (["store", "info"], {}),
    "store profile": (["store", "profile", "iso13485", "--reason", "Certified"], {}),
}

#: Where the record itself narrows the role table: only the item's assignee or the CA's
#: owner completes an action (any writer may be an assignee), so the others are refused.
RECORD_LEVEL_REFUSALS = {("ca complete", "quality"), ("ca complete", "admin"),
                         ("ca complete", "reporter"),
                         # Only an administrator sets another person's e-mail address.
                         ("user email", "quality"), ("user email", "owner"),
                         ("user email", "reporter")}

READS = {"nc show", "nc list", "ca show", "ca list", "history", "evidence list", "overdue",
         "user list", "user token list",
         # notify runs in the matrix as a dry run, which records nothing.
         "notify",
         # so does a webhook delivery pass, and the store's webhooks are in the past.
         "webhook deliver", "webhook list", "webhook deliveries",
         "whoami", "user passwd", "audit verify", "audit prove", "audit review",
         "management-review", "store info"}
#: Writes that change the store or its files without a record event.
NO_EVENT_WRITES = {"readmodels rebuild", "audit checkpoint"}


def expected_allowed(command: str, role: str) -> bool:
    return role in allowed_roles(command) and (command, role) not in RECORD_LEVEL_REFUSALS


def args_of(command: str, refs: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    args, env = COMMANDS[command]
    return [a.format(**refs) for a in args], env


@pytest.mark.parametrize("role", ACCOUNTS)
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_role_matrix(store: Store, command: str, role: str) -> None:
    args, env = args_of(command, store.refs)
    before, contents = store.events(), store.contents()
    outcome = store.run(*args, user=USER[role], **env)
    after = store.events()
    if expected_allowed(command, role):
        assert outcome.code == 0, outcome.stderr
        if command == "audit checkpoint":
            assert store.checkpoints.read_text()
        elif command not in READS | NO_EVENT_WRITES:
            assert len(after) > len(before)
    else:
        assert outcome.code == 4, (outcome.code, outcome.stderr)
        assert after == before, "a refused command wrote an event"
        assert store.contents() == contents, "a refused command changed the store"
        assert store.checkpoints.read_text() == ""
        assert "may not" in outcome.stderr


def test_auditors_never_change_the_store() -> None:
    """SPEC §9.6: the commands that write to the store or its checkpoint log are not open to
    auditors, nor to an account without a role."""
    for command in NO_EVENT_WRITES:
        assert "auditor" not in allowed_roles(command)
    assert allowed_roles("readmodels rebuild") == {"admin", "quality"}
    assert allowed_roles("audit checkpoint") == {"admin", "quality"}


def _leaf_commands() -> set[str]:
    import click

    from capa.cli.main import cli

    ctx = click.Context(cli)
    found: set[str] = set()

    def walk(group: click.Group, prefix: str) -> None:
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            path = f"{prefix} {name}".strip()
            if isinstance(command, click.Group):
                walk(command, path)
            elif command is not None:
                found.add(path)

    walk(cli, "")
    return found


def test_every_command_is_named_in_the_permission_table() -> None:
    from capa.app.permissions import is_named

    assert sorted(c for c in _leaf_commands() if not is_named(c)) == []


def test_the_matrix_covers_every_command_of_the_role_table() -> None:
    from capa.app.permissions import PERMISSIONS

    others = {"import", "login", "logout", "report", "dashboard", "export", "audit export",
              "store copy", "audit vkey", "audit consistency", "evidence get"}
    assert set(PERMISSIONS) - others <= set(COMMANDS)


@pytest.mark.parametrize("role", ["admin", "quality"])
def test_a_command_the_table_does_not_name_is_refused_for_everyone(
    store: Store, role: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Default deny: take `readmodels rebuild` out of the table and no one may run it, in the
    command line and in the application alike."""
    from capa.app import permissions

    table = {k: v for k, v in permissions.PERMISSIONS.items() if k != "readmodels rebuild"}
    monkeypatch.setattr(permissions, "PERMISSIONS", table)
    contents = store.contents()
    outcome = store.run("readmodels", "rebuild", user=USER[role])
    assert outcome.code == 4 and "permission table" in outcome.stderr
    assert store.contents() == contents
    app = open_store(store.target)
    try:
        with app.acting_as(USER[role], PASSWORD), pytest.raises(NotPermitted):
            app.authorise("readmodels rebuild")
        with app.acting_as(USER[role], PASSWORD), pytest.raises(NotPermitted):
            app.queries.rebuild_read_models()
    finally:
        app.close()


# -- authentication ---------------------------------------------------------------------------


def test_no_credentials_and_no_terminal_is_refused_with_a_hint(store: Store) -> None:
    outcome = store.run("nc", "list")
    assert outcome.code == 4
    assert "capa login" in outcome.stderr and "CAPA_USER" in outcome.stderr


def test_a_user_without_a_password_is_refused(store: Store) -> None:
    before = store.events()
    outcome = store.run("nc", "list", user=USER["quality"], password=None)
    assert outcome.code == 4
    assert store.events() == before


def test_a_wrong_password_is_refused_and_recorded_without_the_password(store: Store) -> None:
    before = store.events()
    outcome = store.run("nc", "raise", "--title", "T", "--description", "D", "--source",
                        "process", "--severity", "minor", user=USER["reporter"],
                        password=WRONG)
    assert outcome.code == 4
    assert WRONG not in outcome.stderr
    added = store.events()[len(before):]
    assert [topic.rsplit(".", 1)[-1] for topic, _ in added] == ["LoginFailed"]
    assert WRONG not in added[0][1]
    assert WRONG.encode() not in store.raw_bytes()


def test_a_locked_account_is_refused_even_with_the_right_password(store: Store) -> None:
    before = store.events()
    outcome = store.run("nc", "list", user="locked1")
    assert outcome.code == 4 and "locked" in outcome.stderr
    assert store.events() == before
    assert store.run("user", "unlock", "locked1", user=USER["admin"]).code == 0
    assert store.run("nc", "list", user="locked1").code == 0


def test_a_deactivated_account_is_refused(store: Store) -> None:
    assert store.run("user", "deactivate", "spare1", user=USER["admin"]).code == 0
    outcome = store.run("nc", "list", user="spare1")
    assert outcome.code == 4 and "deactivated" in outcome.stderr


def test_help_and_version_need_no_credentials(store: Store) -> None:
    assert store.run("--help").code == 0
    assert store.run("--version").code == 0
    assert store.run("user", "--help").code == 0


def test_passwords_never_reach_the_store_in_clear(store: Store) -> None:
    store.run("user", "add", "newbie", "--full-name", "New Bie", "--role", "reporter",
              user=USER["admin"], CAPA_NEW_PASSWORD=NEW_PASSWORD)
    store.run("user", "passwd", user="spare1", CAPA_NEW_PASSWORD=NEW_PASSWORD + "x")
    store.run("nc", "list", user="newbie", password=WRONG)
    listing = store.run("--json", "user", "list", user=USER["admin"])
    assert "scrypt" not in listing.stdout
    raw = store.raw_bytes()
    for secret in (PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "x", WRONG):
        assert secret.encode() not in raw


# -- sessions ---------------------------------------------------------------------------------


def login(store: Store, role: str = "quality") -> Path:
    outcome = store.run("login", user=USER[role])
    assert outcome.code == 0, outcome.stderr
    return store.sessions / "session.json"


def test_login_writes_a_private_session_file_without_the_password(store: Store) -> None:
    path = login(store)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    assert data["user"] == USER["quality"]
    assert PASSWORD not in path.read_text()
    assert data["token"] not in "".join(state for _, state in store.events())
    outcome = store.run("whoami")
    assert outcome.code == 0 and USER["quality"] in outcome.stdout


def test_an_administrator_keeps_their_admin_role_and_ids_stay_unambiguous(store: Store) -> None:
    before = store.events()
    own = store.run("user", "revoke", USER["admin"], "admin", user=USER["admin"])
    assert own.code == 2 and "own admin role" in own.stderr and "Traceback" not in own.stderr
    lookalike = store.run("user", "add", "NC-2026-0001", "--full-name", "Somebody", "--role",
                          "reporter", user=USER["admin"], CAPA_NEW_PASSWORD=NEW_PASSWORD)
    assert lookalike.code == 2 and "reads as a record id" in lookalike.stderr
    assert store.events() == before


def test_the_session_file_holds_no_database_password(store: Store) -> None:
    path = login(store)
    text = path.read_text()
    secret = urlsplit(store.target).password
    if secret:  # a server store: its URI's password stays out of the session file
        assert secret not in text and unquote(secret) not in text
    assert json.loads(text)["store"] != store.target or not secret
    assert store.run("whoami").code == 0  # and the session still opens that store


def test_a_session_signature_needs_the_password_again(store: Store) -> None:
    login(store)
    approve = ["ca", "approve", store.refs["CA_PLANNED"]]
    before = store.events()
    refused = store.run(*approve)
    assert refused.code == 4 and "R10" in refused.stderr
    assert store.events() == before
    assert store.run(*approve, CAPA_PASSWORD=PASSWORD).code == 0


def _last_use_in_store(store: Store, minutes_ago: float) -> None:
    """Move the store's last use of every session back, as a clock (or someone writing the
    store) would."""
    moment = dt.datetime.now(dt.UTC).timestamp() - minutes_ago * 60
    query(store.target, "UPDATE capa_sessions SET last_used = ?", moment)


def test_a_session_idle_for_more_than_15_minutes_is_refused(store: Store) -> None:
    path = login(store)
    _last_use_in_store(store, 16)
    before = store.events()
    outcome = store.run("nc", "list")
    assert outcome.code == 4 and "idle" in outcome.stderr
    assert not path.exists() and store.events() == before


def test_a_restored_or_edited_session_file_does_not_revive_an_idle_session(
        store: Store) -> None:
    path = login(store)
    kept = path.read_text()
    _last_use_in_store(store, 16)
    for text in (kept, json.dumps({**json.loads(kept),
                                   "last_used": dt.datetime.now(dt.UTC).isoformat()})):
        path.write_text(text)  # the file as it was at login, or edited to look fresh
        outcome = store.run("nc", "list")
        assert outcome.code == 4 and "idle" in outcome.stderr


def test_a_session_in_use_stays_alive(store: Store) -> None:
    login(store)
    _last_use_in_store(store, 14)
    assert store.run("nc", "list").code == 0
    (last_used,), = query(store.target, "SELECT last_used FROM capa_sessions")
    assert float(last_used) > dt.datetime.now(dt.UTC).timestamp() - 60


def test_a_session_the_store_no_longer_holds_is_refused(store: Store) -> None:
    path = login(store)
    query(store.target, "DELETE FROM capa_sessions")
    outcome = store.run("nc", "list")
    assert outcome.code == 4 and "ended" in outcome.stderr and not path.exists()


def test_a_session_last_used_in_the_future_is_refused(store: Store) -> None:
    # A last use written ahead of the clock would otherwise keep a session alive unseen.
    login(store)
    _last_use_in_store(store, -10)
    assert store.run("nc", "list").code == 4


def test_a_session_older_than_8_hours_is_refused(store: Store,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    login(store)
    # The login time comes from the store's event, so no edit of the file can extend it.
    monkeypatch.setattr("capa.app.identity.SESSION_MAX_AGE", dt.timedelta(0))
    outcome = store.run("nc", "list")
    assert outcome.code == 4 and "8 hours" in outcome.stderr


def test_logout_ends_the_session_in_the_store(store: Store) -> None:
    path = login(store)
    saved = path.read_bytes()
    outcome = store.run("logout")
    assert outcome.code == 0 and not path.exists()
    # A copy of the file made before logout is worthless afterwards.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(saved)
    refused = store.run("nc", "list")
    assert refused.code == 4 and "ended" in refused.stderr


def test_a_session_does_not_open_another_store(store: Store, tmp_path: Path) -> None:
    login(store)
    other = tmp_path / "other"
    other.mkdir()
    copy = clone_target(parse_target(store.target).kind, store.target, other)
    outcome = store.run("--db", copy, "nc", "list")
    assert outcome.code == 4


def test_login_with_a_wrong_password_is_refused(store: Store) -> None:
    outcome = store.run("login", user=USER["quality"], password=WRONG)
    assert outcome.code == 4
    assert not (store.sessions / "session.json").exists()


# -- init -------------------------------------------------------------------------------------


def test_init_creates_the_first_administrator(tmp_path: Path, store_target: str) -> None:
    fresh = Store(tmp_path, store_target, {})
    outcome = fresh.run("init", "--admin", "boss", "--full-name", "Bo Boss", "--org", "Acme",
                        user=None, CAPA_PASSWORD=PASSWORD)
    assert outcome.code == 0, outcome.stderr
    whoami = fresh.run("--json", "whoami", user="boss")
    assert json.loads(whoami.stdout)["roles"] == ["admin"]
    history = fresh.run("--json", "history", "boss", user="boss")
    assert [e["event_type"] for e in json.loads(history.stdout)] == ["UserAdded"]
    assert PASSWORD.encode() not in fresh.raw_bytes()


@pytest.mark.parametrize("password, code", [(None, 2), ("short", 2)])
def test_init_needs_a_good_password_and_leaves_nothing_otherwise(
    tmp_path: Path, store_target: str, password: str | None, code: int
) -> None:
    fresh = Store(tmp_path, store_target, {})
    extra = {"CAPA_PASSWORD": password} if password else {}
    outcome = fresh.run("init", "--admin", "boss", user=None, **extra)
    assert outcome.code == code
    assert not store_exists(fresh.target)


# -- the prompt -------------------------------------------------------------------------------


def run_at_terminal(store: Store, monkeypatch: pytest.MonkeyPatch, typed: str,
                    *args: str, **extra: str) -> Outcome:
    """`capa ARGS` as if typed at a terminal: the prompts read `typed`."""
    monkeypatch.setattr("capa.cli.auth.interactive", lambda: True)
    env = {"CAPA_DB": store.target, "CAPA_USER": None, "CAPA_PASSWORD": None,
           "CAPA_SESSION_DIR": str(store.sessions), "CAPA_NEW_PASSWORD": None, **extra}
    return run_capa(args, env=env, input=typed)


def test_at_a_terminal_the_user_id_and_password_are_prompted_for(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcome = run_at_terminal(store, monkeypatch, f"{USER['auditor']}\n{PASSWORD}\n",
                              "whoami")
    assert outcome.code == 0, outcome.stderr
    assert USER["auditor"] in outcome.stdout
    assert PASSWORD not in outcome.stdout + outcome.stderr


def test_at_a_terminal_a_session_signature_prompts_for_the_password(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    login(store)
    approve = ["ca", "approve", store.refs["CA_PLANNED"]]
    wrong = run_at_terminal(store, monkeypatch, f"{WRONG}\n", *approve)
    assert wrong.code == 4
    assert store.events()[-1][0].endswith("LoginFailed")
    right = run_at_terminal(store, monkeypatch, f"{PASSWORD}\n", *approve)
    assert right.code == 0, right.stderr
    assert "Password (to sign)" in right.stderr


def test_a_session_review_signature_prompts_for_the_password_only_to_sign(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`audit review` lists within a session without a password; with --sign it is a signing
    command: the password is asked for again (R10), and refused without it."""
    login(store)
    period = ["audit", "review", "--from", in_days(0), "--to", in_days(0)]
    before = store.events()
    listed = run_at_terminal(store, monkeypatch, "", *period)
    assert listed.code == 0, listed.stderr
    assert "Password" not in listed.stderr
    monkeypatch.setattr("capa.cli.auth.interactive", lambda: False)
    refused = store.run(*period, "--sign")
    assert refused.code == 4 and "R10" in refused.stderr
    assert store.events() == before
    signed = run_at_terminal(store, monkeypatch, f"{PASSWORD}\n", *period, "--sign")
    assert signed.code == 0, signed.stderr
    assert "Password (to sign)" in signed.stderr
    assert store.events()[-1][0].endswith("AuditTrailReviews.ReviewSigned")
