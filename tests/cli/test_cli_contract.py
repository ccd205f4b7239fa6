"""The CLI contract of SPEC §3 across commands: help, version, exit codes, error documents,
missing store and user, conflicts, and real processes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import click
import pytest
from eventsourcing.application import Repository

import capa as capa_package
from capa.adapters.target import parse_target
from capa.app.application import CapaApplication
from capa.app.store import open_store
from capa.cli.main import cli
from capa.domain.record import record_uuid

if TYPE_CHECKING:
    from conftest import Capa


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    ctx = click.Context(group, info_name=" ".join(("capa", *prefix)))
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, f"capa {' '.join((*prefix, name))} is listed but missing"
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from command_paths(command, (*prefix, name))


ALL_COMMANDS = sorted(command_paths(cli))


def test_the_command_tree_has_the_spec_commands() -> None:
    names = {" ".join(path) for path in ALL_COMMANDS}
    for expected in ("init", "history", "overdue", "nc raise", "nc contain", "nc assess",
                     "nc link", "nc close", "nc cancel", "nc reopen", "nc amend", "nc show",
                     "nc list", "ca open", "ca investigate", "ca plan", "ca approve",
                     "ca complete", "ca extend", "ca verify", "ca close", "ca cancel",
                     "ca reopen", "ca show", "ca list"):
        assert expected in names


@pytest.mark.parametrize("path", [(), *ALL_COMMANDS], ids=lambda p: " ".join(p) or "capa")
def test_every_command_has_help_with_an_example(fresh: Capa, path: tuple[str, ...]) -> None:
    outcome = fresh.run(*path, "--help", user=None)
    assert outcome.code == 0, outcome.stderr
    assert "Example" in outcome.stdout
    assert outcome.stdout.startswith("Usage: capa")
    assert not fresh.exists()


def test_top_level_help_documents_the_exit_codes(fresh: Capa) -> None:
    text = fresh.run("--help", user=None).stdout
    for code in range(7):
        assert re.search(rf"^\s*{code}\s+\S", text, re.MULTILINE), f"exit code {code}"


def test_version(fresh: Capa) -> None:
    outcome = fresh.run("--version", user=None)
    assert outcome.code == 0
    assert capa_package.__version__ in outcome.stdout
    assert "capa" in outcome.stdout


def test_python_dash_m_capa(fresh: Capa) -> None:
    helped = fresh.process("--help", user=None)
    assert helped.code == 0
    assert "Example" in helped.stdout and "Exit codes" in helped.stdout
    version = fresh.process("--version", user=None)
    assert (version.code, capa_package.__version__ in version.stdout) == (0, True)


# -- init ------------------------------------------------------------------------------------


def test_init_creates_the_store_and_only_once(fresh: Capa) -> None:
    created = fresh.run("--json", "init", "--admin", "mhernandez", "--full-name",
                        "Maria Hernandez", user=None, CAPA_PASSWORD=fresh.password)
    assert created.code == 0, created.stderr
    assert {"id", "status", "version"} <= set(created.json())
    assert fresh.exists()
    before = fresh.events()
    assert before >= 1
    again = fresh.run("--json", "init", "--admin", "jchen", "--full-name", "Jun Chen",
                      user=None, CAPA_PASSWORD=fresh.password)
    assert again.code == 2
    assert again.stdout == ""
    assert "exists" in again.error()["message"]
    assert fresh.events() == before


def test_init_without_a_password_creates_nothing(fresh: Capa) -> None:
    outcome = fresh.run("init", "--admin", "mhernandez", "--full-name", "Maria Hernandez",
                        user=None)
    assert outcome.code == 2
    assert "password" in outcome.stderr.lower()
    assert not fresh.exists()


# -- missing store and missing user ----------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [("nc", "list"), ("ca", "list"), ("nc", "show", "NC-2026-0001"), ("history", "NC-2026-0001"),
     ("nc", "raise", "--title", "t", "--description", "d", "--source", "process",
      "--severity", "minor"), ("overdue",)],
)
def test_a_missing_store_is_not_found_with_a_hint_and_is_not_created(
        fresh: Capa, args: tuple[str, ...]) -> None:
    outcome = fresh.run("--json", *args)
    assert outcome.code == 3
    assert outcome.stdout == ""
    message = outcome.error()["message"]
    assert re.search(r"capa\b.*\binit\b", message), message
    assert not fresh.exists()
    plain = fresh.run(*args)
    assert plain.code == 3 and "init" in plain.stderr
    assert 1 <= len(plain.stderr.strip().splitlines()) <= 2


def test_a_missing_store_given_by_option_is_named_in_the_hint(fresh: Capa) -> None:
    elsewhere = fresh.elsewhere("elsewhere.db")
    outcome = fresh.run("--db", elsewhere, "nc", "list")
    assert outcome.code == 3
    assert parse_target(elsewhere).display in outcome.stderr
    assert not fresh.exists(elsewhere)


def test_without_a_user_writes_are_not_authenticated(capa: Capa) -> None:
    error = capa.refused("nc", "raise", "--title", "t", "--description", "d", "--source",
                         "process", "--severity", "minor", code=4, user=None)
    assert "CAPA_USER" in error["message"]
    assert error["rule"] is None
    capa.refused("nc", "raise", "--title", "t", "--description", "d", "--source", "process",
                 "--severity", "minor", code=4, user=capa.reporter, CAPA_PASSWORD=None)


def test_a_wrong_password_is_refused_and_only_the_failed_attempt_is_recorded(
        capa: Capa) -> None:
    before = capa.topics()
    outcome = capa.run("--json", "nc", "raise", "--title", "t", "--description", "d",
                       "--source", "process", "--severity", "minor", user=capa.reporter,
                       CAPA_PASSWORD="not-the-password")
    assert outcome.code == 4
    assert outcome.stdout == ""
    assert "not-the-password" not in outcome.stderr
    added = capa.topics()[len(before):]
    assert len(added) == 1 and added[0].endswith("LoginFailed")


def test_a_role_without_the_permission_is_refused(capa: Capa) -> None:
    nc = capa.nc()
    capa.refused("nc", "assess", nc, "--impact", "2", "--likelihood", "2", "--capa-required",
                 code=4, user=capa.reporter)
    capa.refused("nc", "cancel", nc, "--reason", "mine", code=4, user=capa.owner)


# -- error documents and exit codes ----------------------------------------------------------


def test_json_errors_go_to_stderr_as_one_document(capa: Capa) -> None:
    nc = capa.nc()
    outcome = capa.run("nc", "assess", nc, "--impact", "2", "--likelihood", "1",
                       "--no-capa-required", "--json", user="jchen")
    assert outcome.code == 1
    assert outcome.stdout == ""
    error = outcome.error()
    assert error == {"code": 1, "rule": "R1", "message": error["message"]}
    assert "R1" in error["message"]


def test_usage_errors_are_json_documents_too(capa: Capa) -> None:
    outcome = capa.run("--json", "nc", "raise", "--title", "t")
    assert outcome.code == 2
    assert outcome.stdout == ""
    error = outcome.error()
    assert error["rule"] is None and "--description" in error["message"]


def test_plain_errors_are_one_or_two_lines_on_stderr(capa: Capa) -> None:
    nc = capa.nc()
    outcome = capa.run("nc", "assess", nc, "--impact", "2", "--likelihood", "1",
                       "--no-capa-required", user="jchen")
    assert outcome.code == 1
    assert outcome.stdout == ""
    lines = outcome.stderr.strip().splitlines()
    assert 1 <= len(lines) <= 2
    assert "R1" in lines[0]


@pytest.mark.parametrize(
    "args",
    [("bogus",), ("nc", "bogus"), ("nc", "raise", "--bogus"), ("nc", "show"),
     ("ca", "list", "--status", "done")],
)
def test_unknown_commands_and_options_exit_2(capa: Capa, args: tuple[str, ...]) -> None:
    capa.refused(*args, code=2)


class Interference:
    """Make another writer change a record right after the command has loaded it."""

    def __init__(self, capa: Capa, ref: str, monkeypatch: pytest.MonkeyPatch) -> None:
        self.capa = capa
        self.target = record_uuid(ref)
        self.ref = ref
        self.fired = False
        original = Repository.get
        interference = self

        def get(repository: Any, aggregate_id: Any, *args: Any, **kwargs: Any) -> Any:
            loaded = original(repository, aggregate_id, *args, **kwargs)
            if aggregate_id == interference.target and not interference.fired:
                interference.fired = True
                interference.write()
            return loaded

        monkeypatch.setattr(Repository, "get", get)

    def write(self) -> None:
        other: CapaApplication = open_store(self.capa.target)
        try:
            with other.acting_as(self.capa.reporter, self.capa.password):
                other.nonconformities.contain_nc(self.ref, action="Held by the other writer",
                                                 disposition="quarantine")
        finally:
            other.close()


def test_a_concurrent_change_exits_5_and_the_loser_writes_nothing(
        capa: Capa, monkeypatch: pytest.MonkeyPatch) -> None:
    nc = capa.nc()
    before = capa.events()
    interference = Interference(capa, nc, monkeypatch)
    outcome = capa.run("--json", "nc", "contain", nc, "--action", "Held by me",
                       user=capa.reporter)
    assert interference.fired
    assert outcome.code == 5
    assert outcome.stdout == ""
    assert "retry" in outcome.error()["message"]
    assert capa.events() == before + 1  # the other writer's event only
    monkeypatch.undo()
    shown = capa.run("--json", "nc", "show", nc).json()
    assert [c["action"] for c in shown["containment"]] == ["Held by the other writer"]


# -- real processes --------------------------------------------------------------------------


RAISE = ("nc", "raise", "--title", "Cracked housing", "--description", "Boss B2",
         "--source", "process", "--severity", "major")


def test_exit_codes_of_real_processes(capa: Capa) -> None:
    ok = capa.process("--json", *RAISE, user=capa.reporter)
    assert ok.code == 0, ok.stderr
    nc = ok.json()["id"]
    before = capa.events()
    cases: list[tuple[int, tuple[str, ...], str | None]] = [
        (1, ("nc", "assess", nc, "--impact", "1", "--likelihood", "1", "--no-capa-required"),
         "jchen"),
        (2, ("nc", "raise", "--title", "t", "--description", "d", "--source", "process",
             "--severity", "huge"), capa.reporter),
        (2, ("nc", "raise", "--title", "t", "--description", "d", "--source", "process",
             "--severity", "minor", "--detected-on", "2026-02-30"), capa.reporter),
        (3, ("nc", "show", f"NC-{capa.year}-0099"), "jchen"),
        (3, ("--db", capa.elsewhere("nowhere.db"), "nc", "list"), "jchen"),
        (4, RAISE, None),
    ]
    for code, args, user in cases:
        outcome = capa.process("--json", *args, user=user)
        assert outcome.code == code, (args, outcome.stderr)
        assert outcome.stdout == ""
        document = json.loads(outcome.stderr)
        assert document["error"]["code"] == code
        plain = capa.process(*args, user=user)
        assert plain.code == code
        assert 1 <= len(plain.stderr.strip().splitlines()) <= 2
    assert capa.events() == before


def test_concurrent_raise_processes_get_distinct_contiguous_ids(capa: Capa) -> None:
    before = capa.events()
    merged = {key: value for key, value in {**os.environ, "PYTHONPATH": str(capa.root),
                                            **capa.env(capa.reporter)}.items()
              if value is not None}
    processes = [
        subprocess.Popen([sys.executable, "-m", "capa", "--json", *RAISE], env=merged,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         stdin=subprocess.DEVNULL)
        for _ in range(6)
    ]
    ids: list[str] = []
    started = time.monotonic()
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert "Traceback" not in out + err
        assert process.returncode in (0, 5), err
        if process.returncode == 0:
            ids.append(json.loads(out)["id"])
    assert time.monotonic() - started < 120
    assert len(ids) == len(set(ids)) >= 1
    numbers = sorted(int(ref.rsplit("-", 1)[1]) for ref in ids)
    assert numbers == list(range(1, len(ids) + 1))
    assert capa.events() == before + len(ids)
