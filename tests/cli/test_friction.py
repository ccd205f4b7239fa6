"""Everyday friction (SPEC §10): the session's store, exit codes for unknown users and unwritable
--out, past due dates (R5), assignees and completions recorded on someone's behalf."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import pytest

from capa.app.storecopy import target_display
from tests.cli.conftest import Capa, Outcome

HOSTILE = [
    "\x1b[31mred\x1b[0m and \x1b]0;title\x07",
    "=HYPERLINK(\"http://evil.example\")",
    "<script>alert(1)</script> **bold** | pipe",
    "Нужно время: 供应商延迟 — تأخير المورد",
    "x" * 3000,
]


def away(capa: Capa, tmp_path: Path) -> Capa:
    """The same person in another folder, with the same session directory."""
    folder = tmp_path / "elsewhere"
    folder.mkdir(exist_ok=True)
    other = Capa(folder, capa.target)
    other.sessions = capa.sessions
    return other


def without_password(capa: Capa) -> tuple[str, dict[str, str | None]]:
    """The store's target as a session can remember it, and the environment that lets libpq
    connect without a password in the URI (a password file, as a team would use ~/.pgpass)."""
    if capa.backend == "sqlite":
        return capa.target, {}
    parts = urlsplit(capa.target)
    password = unquote(parts.password or "")
    netloc = parts.netloc.rpartition("@")[2]
    user = unquote(parts.username or "")
    passfile = capa.folder / "pgpass"
    if not passfile.exists():  # 0600 from the start: libpq ignores a file others can read
        fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(f"*:*:*:{_pgpass_field(user)}:{_pgpass_field(password)}\n")
    uri = urlunsplit(parts._replace(netloc=f"{quote(user, safe='')}@{netloc}"))
    return uri, {"PGPASSFILE": str(passfile)}


def _pgpass_field(text: str) -> str:
    return text.replace("\\", "\\\\").replace(":", "\\:")


def login(capa: Capa) -> Outcome:
    target, env = without_password(capa)
    return capa.run("login", CAPA_DB=target, **env)


def run_away(capa: Capa, tmp_path: Path, *args: str, **env: str | None) -> Outcome:
    """A command in another folder: no --db, no CAPA_DB, no credentials; only the session."""
    settings: dict[str, str | None] = {"CAPA_DB": None, "CAPA_SESSION_DIR": str(capa.sessions),
                                       **without_password(capa)[1], **env}
    return away(capa, tmp_path).run(*args, user=None, **settings)


# -- 1. a session remembers its store --------------------------------------------------------


def test_a_command_without_db_uses_the_store_of_the_session(capa: Capa, tmp_path: Path) -> None:
    assert login(capa).code == 0
    outcome = run_away(capa, tmp_path, "nc", "list")
    assert outcome.code == 0, outcome.stderr
    shown = target_display(str(Path(capa.target).resolve()) if capa.backend == "sqlite"
                           else without_password(capa)[0])
    assert outcome.stderr == f"using store {shown} (from your session)\n"
    assert not (tmp_path / "elsewhere" / "capa.db").exists()


def test_the_session_store_is_quiet_under_json(capa: Capa, tmp_path: Path) -> None:
    capa.nc()
    assert login(capa).code == 0
    outcome = run_away(capa, tmp_path, "--json", "nc", "list")
    assert outcome.code == 0, outcome.stderr
    assert outcome.stderr == ""
    assert len(outcome.json()) == 1


def test_db_and_capa_db_take_precedence_over_the_session(capa: Capa, tmp_path: Path) -> None:
    assert login(capa).code == 0
    missing = str(tmp_path / "elsewhere" / "other.db")
    for outcome in (run_away(capa, tmp_path, "--db", missing, "nc", "list"),
                    run_away(capa, tmp_path, "nc", "list", CAPA_DB=missing)):
        assert outcome.code == 3, outcome.stderr
        assert "from your session" not in outcome.stderr
        assert "create one with" in outcome.stderr
        assert not Path(missing).exists()


def test_without_a_session_a_missing_store_says_how_to_create_one(capa: Capa,
                                                                  tmp_path: Path) -> None:
    outcome = run_away(capa, tmp_path, "nc", "list")
    assert outcome.code == 3
    assert "create one with" in outcome.stderr
    assert "from your session" not in outcome.stderr
    assert not (tmp_path / "elsewhere" / "capa.db").exists()


def test_a_session_on_a_server_store_with_a_password_says_to_name_it(tmp_path: Path) -> None:
    here = Capa(tmp_path, str(tmp_path / "capa.db"))
    here.sessions.mkdir()
    (here.sessions / "session.json").write_text(json.dumps(
        {"user": "mhernandez", "store": "postgresql://capa:***@db.example:5432/capa",
         "token": "0" * 64, "started_at": "2026-01-01T00:00:00Z"}))
    outcome = here.run("nc", "list", user=None, CAPA_DB=None)
    assert outcome.code == 3
    assert outcome.stderr.splitlines()[0] == (
        "your session's store postgresql://capa:***@db.example:5432/capa is used only when "
        "named with --db or CAPA_DB (the session never keeps a database password)")
    assert not (tmp_path / "capa.db").exists()


def test_the_session_file_stays_private_and_holds_no_password(capa: Capa) -> None:
    assert login(capa).code == 0
    path = capa.sessions / "session.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    assert capa.password not in path.read_text()
    assert data["target"] == (str(Path(capa.target).resolve()) if capa.backend == "sqlite"
                              else target_display(without_password(capa)[0]))


def test_a_server_store_whose_uri_holds_a_password_is_not_remembered() -> None:
    from capa.cli.auth import reopenable

    assert reopenable("postgresql://capa:s3cret@db.example:5432/capa") is None
    assert reopenable("postgresql://capa@db.example:5432/capa") == \
        "postgresql://capa@db.example:5432/capa"
    assert reopenable("postgresql://capa@/capa?host=/run/postgresql") == \
        "postgresql://capa@/capa?host=/run/postgresql"
    assert reopenable("relative.db") == str(Path("relative.db").resolve())


def test_logout_in_another_folder_ends_the_session_in_its_store(capa: Capa,
                                                                tmp_path: Path) -> None:
    assert login(capa).code == 0
    outcome = run_away(capa, tmp_path, "logout")
    assert outcome.code == 0, outcome.stderr
    assert f"logged out {capa.quality_manager}" in outcome.stdout
    assert capa.run("nc", "list", user=None).code == 4


@pytest.mark.sqlite_only("init makes a SQLite file in the folder whatever the back end")
def test_init_never_falls_back_to_the_session_store(capa: Capa, tmp_path: Path) -> None:
    assert login(capa).code == 0
    before = capa.events()
    outcome = run_away(capa, tmp_path, "init", "--admin", "newadmin", "--full-name", "New Admin",
                       CAPA_PASSWORD=capa.password)
    assert outcome.code == 0, outcome.stderr
    assert "from your session" not in outcome.stderr
    assert (tmp_path / "elsewhere" / "capa.db").exists()
    assert capa.events() == before


# -- 2. exit codes: unknown users 3, unwritable --out 2 --------------------------------------


def test_unknown_owner_is_not_found(capa: Capa) -> None:
    error = capa.refused("ca", "open", "--title", "T", "--problem", "P", "--owner", "nobody",
                         code=3, user=capa.quality_engineer)
    assert "not found (user)" in error["message"]


def test_unknown_assignee_is_not_found(capa: Capa) -> None:
    ref = capa.ca()
    capa.write("ca", "investigate", ref, "--method", "other", "--root-cause", "x",
               "--category", "method", user=capa.owner)
    error = capa.refused("ca", "plan", ref, "--action", "A", "--assignee", "nobody", "--due",
                         capa.day(5), "--type", "corrective", code=3, user=capa.owner)
    assert "not found (user)" in error["message"]


@pytest.mark.parametrize("args", [["user", "grant", "nobody", "quality"],
                                  ["user", "unlock", "nobody"],
                                  ["user", "deactivate", "nobody"]])
def test_unknown_user_in_account_commands_is_not_found(capa: Capa, args: list[str]) -> None:
    error = capa.refused(*args, code=3)
    assert "not found (user)" in error["message"]


def test_deactivated_assignee_is_invalid_input(capa: Capa) -> None:
    assert capa.run("user", "deactivate", capa.technician).code == 0
    ref = capa.ca()
    capa.write("ca", "investigate", ref, "--method", "other", "--root-cause", "x",
               "--category", "method", user=capa.owner)
    capa.refused("ca", "plan", ref, "--action", "A", "--assignee", capa.technician, "--due",
                 capa.day(5), "--type", "corrective", code=2, user=capa.owner)


@pytest.mark.parametrize("args", [
    ["audit", "export", "--out", "missing/dir/x"],
    ["audit", "export", "--out", "missing/dir/x.zip"],
    ["report", "{nc}", "--format", "md", "--out", "missing/dir/x.md"],
    ["dashboard", "--out", "missing/dir/x.html"],
    ["export", "--format", "csv", "--out", "missing/dir/x.csv"],
])
def test_an_out_in_a_missing_folder_is_exit_2_everywhere(capa: Capa, args: list[str]) -> None:
    nc = capa.nc()
    before = sorted(p.name for p in capa.folder.iterdir())
    error = capa.refused(*[a.format(nc=nc) for a in args], code=2)
    assert "does not exist" in error["message"]
    assert sorted(p.name for p in capa.folder.iterdir()) == before


# -- 3. due dates in the past (R5) -----------------------------------------------------------


def investigated(capa: Capa) -> str:
    ref = capa.ca()
    capa.write("ca", "investigate", ref, "--method", "other", "--root-cause", "Worn insert",
               "--category", "machine", user=capa.owner)
    return ref


def plan(capa: Capa, ref: str, due: str, *extra: str) -> list[str]:
    return ["ca", "plan", ref, "--action", "Replace insert", "--assignee", capa.technician,
            "--due", due, "--type", "corrective", *extra]


@pytest.mark.parametrize("extra", [(), ("--allow-past-due",), ("--allow-past-due", "--reason",
                                                                 "   ")])
def test_a_past_due_date_is_refused_without_a_reason(capa: Capa, extra: tuple[str, ...]) -> None:
    ref = investigated(capa)
    error = capa.refused(*plan(capa, ref, capa.day(-1), *extra), code=1, rule="R5",
                         user=capa.owner)
    assert capa.day(-1) in error["message"]


def test_reason_without_allow_past_due_is_a_usage_error(capa: Capa) -> None:
    ref = investigated(capa)
    error = capa.refused(*plan(capa, ref, capa.day(-1), "--reason", "late"), code=2,
                         user=capa.owner)
    assert "--allow-past-due" in error["message"]


def test_today_is_not_in_the_past(capa: Capa) -> None:
    ref = investigated(capa)
    capa.write(*plan(capa, ref, capa.day(0)), user=capa.owner)
    item = capa.run("--json", "ca", "show", ref).json()["items"][0]
    assert "past_due_reason" not in item


@pytest.mark.parametrize("reason", HOSTILE)
def test_an_accepted_past_due_date_keeps_its_reason(capa: Capa, reason: str) -> None:
    ref = investigated(capa)
    capa.write(*plan(capa, ref, capa.day(-3), "--allow-past-due", "--reason", reason),
               user=capa.owner)
    item = capa.run("--json", "ca", "show", ref).json()["items"][0]
    assert (item["due"], item["past_due_reason"]) == (capa.day(-3), reason)
    planned = [e for e in capa.run("--json", "history", ref).json()
               if e["event_type"] == "ActionItemPlanned"]
    assert planned[-1]["reason"] == reason
    overdue = capa.run("--json", "overdue").json()
    assert any(ref in json.dumps(row) for row in overdue)


def test_an_extension_into_the_past_needs_allow_past_due(capa: Capa) -> None:
    ref = investigated(capa)
    capa.write(*plan(capa, ref, capa.day(-9), "--allow-past-due", "--reason", "Found late"),
               user=capa.owner)
    capa.write("ca", "approve", ref)
    capa.refused("ca", "extend", ref, "A1", "--due", capa.day(-2), "--reason", "Parts late",
                 code=1, rule="R5")
    capa.write("ca", "extend", ref, "A1", "--due", capa.day(-2), "--reason", "Parts late",
               "--allow-past-due")
    assert capa.run("--json", "ca", "show", ref).json()["items"][0]["due"] == capa.day(-2)


# -- 4. assignees and completions on someone's behalf ----------------------------------------


def approved_with(capa: Capa, assignee: str) -> str:
    ref = investigated(capa)
    capa.write("ca", "plan", ref, "--action", "Re-label lot L2311", "--assignee", assignee,
               "--due", capa.day(5), "--type", "correction", user=capa.owner)
    capa.write("ca", "approve", ref)
    return ref


def test_a_reporter_may_be_assigned_and_complete_the_action(capa: Capa) -> None:
    ref = approved_with(capa, capa.reporter)
    done = capa.write("ca", "complete", ref, "A1", "--note", "Re-labelled", user=capa.reporter)
    assert done["status"] == "implemented"
    item = capa.run("--json", "ca", "show", ref).json()["items"][0]
    assert item["completed_by"] == capa.reporter
    assert "recorded_by" not in item and "on_behalf_reason" not in item


def test_an_auditor_cannot_be_assigned(capa: Capa) -> None:
    assert capa.run("user", "add", "aud1", "--full-name", "Audrey Auditor", "--role",
                    "auditor", CAPA_NEW_PASSWORD=capa.password).code == 0
    ref = investigated(capa)
    error = capa.refused("ca", "plan", ref, "--action", "A", "--assignee", "aud1", "--due",
                         capa.day(5), "--type", "corrective", code=2, user=capa.owner)
    assert "aud1" in error["message"]


@pytest.mark.parametrize("reason", HOSTILE[:4])
def test_quality_records_a_completion_on_someones_behalf(capa: Capa, reason: str) -> None:
    ref = approved_with(capa, capa.technician)
    capa.write("ca", "complete", ref, "A1", "--note", "Done on nights", "--on-behalf-of",
               capa.technician, "--reason", reason, user=capa.quality_engineer)
    item = capa.run("--json", "ca", "show", ref).json()["items"][0]
    assert (item["state"], item["completed_by"], item["recorded_by"],
            item["on_behalf_reason"]) == ("done", capa.technician, capa.quality_engineer, reason)
    # The read tables follow the new event: the CA is implemented, nothing is overdue.
    rows = {r["id"]: r for r in capa.run("--json", "ca", "list").json()}
    assert rows[ref]["status"] == "implemented"
    event = capa.run("--json", "history", ref).json()[-1]
    assert event["event_type"] == "ActionItemCompletedOnBehalf"
    assert event["actor"] == capa.quality_engineer
    assert event["reason"] == reason
    # Whoever recorded the completion took part in it and cannot verify it (R3).
    capa.refused("ca", "verify", ref, "--effective", "--note", "ok", code=1, rule="R3",
                 user=capa.quality_engineer)


def test_on_behalf_needs_a_reason(capa: Capa) -> None:
    ref = approved_with(capa, capa.technician)
    capa.refused("ca", "complete", ref, "A1", "--note", "Done", "--on-behalf-of",
                 capa.technician, code=1, rule="R8", user=capa.quality_engineer)
    capa.refused("ca", "complete", ref, "A1", "--note", "Done", "--on-behalf-of",
                 capa.technician, "--reason", "  ", code=1, rule="R8",
                 user=capa.quality_engineer)
    capa.refused("ca", "complete", ref, "A1", "--note", "Done", "--reason", "why", code=2,
                 user=capa.quality_engineer)


def test_only_quality_records_on_someones_behalf(capa: Capa) -> None:
    ref = approved_with(capa, capa.technician)
    capa.refused("ca", "complete", ref, "A1", "--note", "Done", "--on-behalf-of",
                 capa.technician, "--reason", "r", code=4, user=capa.owner)


def test_on_behalf_only_of_the_assignee_or_the_owner(capa: Capa) -> None:
    ref = approved_with(capa, capa.technician)
    capa.refused("ca", "complete", ref, "A1", "--note", "Done", "--on-behalf-of",
                 capa.reporter, "--reason", "r", code=4, user=capa.quality_engineer)
    error = capa.refused("ca", "complete", ref, "A1", "--note", "Done", "--on-behalf-of",
                         "nobody", "--reason", "r", code=3, user=capa.quality_engineer)
    assert "not found (user)" in error["message"]
    # The owner answers for every action: quality may record it for them too.
    capa.write("ca", "complete", ref, "A1", "--note", "Done", "--on-behalf-of", capa.owner,
               "--reason", "Owner on leave; signed paper record", user=capa.quality_engineer)


# -- 5. the demo's tour prints commands that work as typed -----------------------------------


def _program(folder: Path) -> Path:
    program = folder / ".venv" / "bin" / "capa"
    program.parent.mkdir(parents=True)
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    return program


def test_the_tour_names_capa_by_its_path_when_the_path_does_not_find_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from capa.cli.init import command_as_typed

    program = _program(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", [".venv/bin/capa", "--db", "demo.db", "demo"])
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert command_as_typed() == ".venv/bin/capa"
    monkeypatch.setattr("sys.argv", [str(program), "demo"])
    assert command_as_typed() == ".venv/bin/capa"
    monkeypatch.chdir(tmp_path.parent)
    assert command_as_typed() == f"{tmp_path.name}/.venv/bin/capa"


def test_the_tour_says_capa_when_the_path_finds_this_very_program(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from capa.cli.init import command_as_typed

    program = _program(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", [".venv/bin/capa", "demo"])
    monkeypatch.setenv("PATH", f"{program.parent}:/usr/bin:/bin")
    assert command_as_typed() == "capa"
    other = _program(tmp_path / "other")  # another capa first on the PATH is not this one
    monkeypatch.setenv("PATH", f"{other.parent}:{program.parent}")
    assert command_as_typed() == ".venv/bin/capa"


def test_the_tour_of_python_m_capa_says_python_m_capa(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from capa.cli.init import command_as_typed

    monkeypatch.setattr("sys.argv", ["/somewhere/capa/__main__.py", "demo"])
    typed = command_as_typed()
    assert typed.endswith(" -m capa")
    assert Path(typed.removesuffix(" -m capa").strip("'")).samefile(sys.executable)


def test_signed_content_reads_as_signed_with_the_new_item_fields(capa: Capa) -> None:
    """SPEC §9: the documented recipe recomputes each signature's content digest from `show`;
    an item planned past due, or completed on someone's behalf, must still match it."""
    from tests.cli.test_audit_cli import documented_digest

    ref = investigated(capa)
    capa.write(*plan(capa, ref, capa.day(-2), "--allow-past-due", "--reason", "Recorded late"),
               user=capa.owner)
    capa.write("ca", "approve", ref)
    capa.write("ca", "complete", ref, "A1", "--note", "Done", "--on-behalf-of", capa.technician,
               "--reason", "Paper record WO-4471", user=capa.quality_engineer)
    capa.write("ca", "verify", ref, "--effective", "--note", "No cracks", user=capa.verifier)
    signatures = [e["signature"] for e in capa.run("--json", "history", ref).json()
                  if e["signature"] is not None]
    assert len(signatures) == 2
    for signature in signatures:
        shown = capa.run("--json", "ca", "show", ref, "--version",
                         str(signature["signed_version"])).json()
        assert documented_digest(shown) == signature["content_sha256"]
    assert "recorded_by" in shown["items"][0] and "past_due_reason" in shown["items"][0]


@pytest.mark.parametrize("name", ["{user}", "USER-{user}", "user-{user}", "  {user} "])
def test_history_of_an_account_by_id_or_record_id(capa: Capa, name: str) -> None:
    trail = capa.run("--json", "history", name.format(user=capa.technician))
    assert trail.code == 0, trail.stderr
    assert trail.json()[0]["event_type"] == "UserAdded"


@pytest.mark.parametrize("name", ["nobody", "USER-nobody"])
def test_history_of_an_unknown_user_is_not_found(capa: Capa, name: str) -> None:
    error = capa.refused("history", name, code=3)
    assert error["message"] == "not found (user): 'nobody' is not a user of this store"
