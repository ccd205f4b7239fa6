"""Steps of features/cli, driving the real `capa` command in a child process.

The exit status is part of the contract (SPEC §3), so each step runs `python -m capa` as a
user would, with the acting user in CAPA_USER and CAPA_PASSWORD.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pytest_bdd import parsers, then, when

from capa.adapters.target import parse_target
from capa.app.store import open_store
from tests.support.backends import query, store_exists

_NC_REF = re.compile(r"\b(NC-\d{4}-\d{4,})\b")


def capa_cli(world: Any, user: str | None, *args: str, db: str | None = None,
             password: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run `capa --db STORE ARGS…` as `user` in the scenario's folder, noting how many events
    the store held before. STORE is a SQLite path or a PostgreSQL URI."""
    world.expect_no_refusal()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPA_")}
    env["CAPA_SESSION_DIR"] = str(world.folder / "sessions")
    if user:
        env["CAPA_USER"] = user
        env["CAPA_PASSWORD"] = password or world.password_of(user)
    if parse_target(db or world.target).kind == "postgres":
        env["CAPA_KEY"] = str(world.folder / "capa-audit.key")  # a server store's key's place
    if store_exists(world.target):
        world.events_before = world.events()
    return subprocess.run(
        [sys.executable, "-m", "capa", "--db", db or world.target, *args],
        env=env, cwd=world.folder, stdin=subprocess.DEVNULL, capture_output=True,
        text=True, timeout=120, check=False,
    )


def _word(text: str) -> str:
    return text.strip().lower().replace(" ", "-")


# -- what people do at the command line -------------------------------------------------------


@when(parsers.parse('"{user}" raises at the command line the "{severity}" nonconformity "{nc}" '
                    'from "{source}", titled "{title}"'), target_fixture="cli")
def raises_at_cli(world: Any, user: str, severity: str, nc: str, source: str,
                  title: str) -> subprocess.CompletedProcess[str]:
    run = capa_cli(world, user, "nc", "raise", "--title", title,
                   "--description", "Reported from the command line", "--source", _word(source),
                   "--severity", _word(severity))
    found = _NC_REF.search(run.stdout)
    if run.returncode == 0 and found:
        world.refs[nc] = found.group(1)
    return run


@when(parsers.parse('"{user}" raises at the command line a nonconformity of severity '
                    '"{severity}"'), target_fixture="cli")
def raises_bad_at_cli(world: Any, user: str, severity: str) -> subprocess.CompletedProcess[str]:
    return capa_cli(world, user, "nc", "raise", "--title", "Loose screw", "--description",
                    "Found on the floor of cell 2", "--source", "process", "--severity", severity)


@when("a nonconformity is raised at the command line with nobody identified",
      target_fixture="cli")
def raises_anonymously_at_cli(world: Any) -> subprocess.CompletedProcess[str]:
    return capa_cli(world, None, "nc", "raise", "--title", "Loose screw", "--description",
                    "Found on the floor of cell 2", "--source", "process", "--severity", "minor")


@when(parsers.parse('"{user}" raises at the command line a nonconformity in a store that does '
                    'not exist'), target_fixture="cli")
def raises_without_store(world: Any, user: str) -> subprocess.CompletedProcess[str]:
    if world.backend == "sqlite":
        missing = world.folder / "elsewhere" / "quality.db"
        missing.parent.mkdir()
        where = str(missing)
    else:  # a database the server does not have
        where = urlunsplit(urlsplit(world.target)._replace(path="/quality_nowhere"))
    world.paths["missing store"] = where
    return capa_cli(world, user, "nc", "raise", "--title", "Loose screw", "--description",
                    "Found on the floor of cell 2", "--source", "process", "--severity", "minor",
                    db=where)


@when(parsers.parse('"{user}" shows at the command line the nonconformity "{nc}"'),
      target_fixture="cli")
def shows_at_cli(world: Any, user: str, nc: str) -> subprocess.CompletedProcess[str]:
    return capa_cli(world, user, "nc", "show", world.ref(nc))


@when(parsers.parse('"{user}" shows at the command line the nonconformity numbered "{number}" '
                    'of this year'), target_fixture="cli")
def shows_missing_at_cli(world: Any, user: str, number: str) -> subprocess.CompletedProcess[str]:
    year = dt.datetime.now(dt.UTC).year
    return capa_cli(world, user, "nc", "show", f"NC-{year}-{number}")


@when(parsers.parse('"{user}" assesses at the command line "{nc}" at impact {impact:d} and '
                    'likelihood {likelihood:d}, needing no corrective action and giving no '
                    'rationale'), target_fixture="cli")
def assesses_at_cli(world: Any, user: str, nc: str, impact: int,
                    likelihood: int) -> subprocess.CompletedProcess[str]:
    return capa_cli(world, user, "nc", "assess", world.ref(nc), "--impact", str(impact),
                    "--likelihood", str(likelihood), "--no-capa-required")


@when(parsers.parse('"{user}" approves at the command line the plan of "{ca}"'),
      target_fixture="cli")
def approves_at_cli(world: Any, user: str, ca: str) -> subprocess.CompletedProcess[str]:
    return capa_cli(world, user, "ca", "approve", world.ref(ca))


@when(parsers.parse('"{user}" sets up at the command line a new store for "{organisation}"'),
      target_fixture="cli")
def sets_up_store(world: Any, user: str, organisation: str) -> subprocess.CompletedProcess[str]:
    new_store = world.paths["new store"] = world.place("new-store.db")
    full_name = world.people.get(user, user)
    return capa_cli(world, user, "init", "--admin", user, "--full-name", full_name,
                    "--org", organisation, db=new_store)


# -- what the command line answers ------------------------------------------------------------


@then("the command line succeeds")
def cli_succeeds(cli: subprocess.CompletedProcess[str]) -> None:
    assert cli.returncode == 0, f"exit {cli.returncode}: {cli.stderr}"
    assert "Traceback" not in cli.stderr


@then(parsers.parse('the command line reports "{alias}" as "{status}" at version {version:d}'))
def cli_reports(world: Any, cli: subprocess.CompletedProcess[str], alias: str, status: str,
                version: int) -> None:
    assert cli.stdout.strip() == f"{world.ref(alias)}: {status} (version {version})"


@then(parsers.parse('the command line shows the "{name}" as "{value}"'))
def cli_shows(cli: subprocess.CompletedProcess[str], name: str, value: str) -> None:
    key = name.strip().replace(" ", "_")
    assert f"{key}: {value}" in cli.stdout.splitlines(), cli.stdout


@then(parsers.parse("the command line refuses with exit status {code:d}"))
def cli_refuses(cli: subprocess.CompletedProcess[str], code: int) -> None:
    assert cli.returncode == code, f"exit {cli.returncode}, not {code}: {cli.stderr}"


@then(parsers.parse('the command line message names rule "{rule}"'))
def cli_names_rule(cli: subprocess.CompletedProcess[str], rule: str) -> None:
    assert f"refused ({rule})" in cli.stderr, cli.stderr


@then("the command line explains itself in a line or two, without a traceback")
def cli_explains(cli: subprocess.CompletedProcess[str]) -> None:
    assert cli.stdout == ""
    assert "Traceback" not in cli.stderr
    assert 1 <= len(cli.stderr.strip().splitlines()) <= 2, cli.stderr


@then("the command line says how to create a store")
def cli_says_how_to_create(cli: subprocess.CompletedProcess[str]) -> None:
    assert " init" in cli.stderr, cli.stderr


@then("no store was created there")
def no_store_created(world: Any) -> None:
    missing = world.paths["missing store"]
    assert not store_exists(missing)
    if world.backend == "sqlite":
        assert list(Path(missing).parent.iterdir()) == []
    else:  # not even the database
        name = urlsplit(missing).path.lstrip("/")
        assert query(world.target, "SELECT 1 FROM pg_database WHERE datname = ?", name) == []


@then(parsers.parse('the new store belongs to "{organisation}" and is administered by "{user}"'))
def new_store_belongs(world: Any, organisation: str, user: str) -> None:
    app = open_store(world.paths["new store"])
    try:
        assert app.store_info()["organisation"] == organisation
        with app.acting_as(user, world.password_of(user)):
            account = app.identity.whoami()
        assert account["user"] == user and "admin" in account["roles"]
        assert account["full_name"] == world.people[user]
    finally:
        app.close()
