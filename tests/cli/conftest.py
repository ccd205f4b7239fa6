"""Fixtures for the command line: run `capa` in-process (as `main()` does, with its exit codes)
or as a real process, against a store file made fresh for each test."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from capa.cli.main import main

PASSWORD = "correct-horse-battery-staple"

QUALITY_MANAGER = "mhernandez"
QUALITY_ENGINEER = "jchen"
OWNER = "apatel"
TECHNICIAN = "lnguyen"
VERIFIER = "rkowalski"
REPORTER = "tokafor"

#: user id -> (full name, roles); the first one initialises the store through `capa init`.
CAST: dict[str, tuple[str, list[str]]] = {
    QUALITY_MANAGER: ("Maria Hernandez", ["admin", "quality"]),
    QUALITY_ENGINEER: ("Jun Chen", ["quality"]),
    OWNER: ("Anil Patel", ["owner"]),
    TECHNICIAN: ("Linh Nguyen", ["owner"]),
    VERIFIER: ("Roman Kowalski", ["quality"]),
    REPORTER: ("Tolu Okafor", ["reporter"]),
}

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Outcome:
    """What a user sees: the exit code and the two output streams."""

    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """stdout as exactly one JSON document (json.loads refuses anything after it)."""
        return json.loads(self.stdout)

    def error(self) -> dict[str, Any]:
        """The --json error document on stderr."""
        document = json.loads(self.stderr)
        assert set(document) == {"error"}
        error: dict[str, Any] = document["error"]
        assert set(error) == {"code", "rule", "message"}
        return error


class Capa:
    """A store file and the environment of the person at the keyboard."""

    password = PASSWORD
    root = ROOT
    quality_manager = QUALITY_MANAGER
    quality_engineer = QUALITY_ENGINEER
    owner = OWNER
    technician = TECHNICIAN
    verifier = VERIFIER
    reporter = REPORTER

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.db = folder / "capa.db"
        self.sessions = folder / "sessions"
        self.today = dt.datetime.now(dt.UTC).date()
        self.year = dt.datetime.now(dt.UTC).year

    # -- running ---------------------------------------------------------------------------

    def env(self, user: str | None, **extra: str | None) -> dict[str, str | None]:
        env: dict[str, str | None] = {
            "CAPA_DB": str(self.db), "CAPA_USER": user, "CAPA_PASSWORD": PASSWORD,
            "CAPA_SESSION_DIR": str(self.sessions), "CAPA_DEBUG": None,
            "CAPA_NEW_PASSWORD": None,
        }
        if user is None:
            env["CAPA_PASSWORD"] = None
        env.update(extra)
        return env

    def run(self, *args: str, user: str | None = QUALITY_MANAGER,
            **env: str | None) -> Outcome:
        """`capa ARGS` in-process through `main()`, which maps errors to exit codes."""
        runner = CliRunner()
        with runner.isolation(env=self.env(user, **env)) as (out, err, _):
            try:
                main(list(args))
            except SystemExit as stop:
                code = stop.code if isinstance(stop.code, int) else 1
            else:
                code = 0
            outcome = Outcome(code, out.getvalue().decode(), err.getvalue().decode())
        assert "Traceback" not in outcome.stdout + outcome.stderr
        return outcome

    def process(self, *args: str, user: str | None = QUALITY_MANAGER,
                **env: str | None) -> Outcome:
        """`python -m capa ARGS` as a real process."""
        merged = {**os.environ, "PYTHONPATH": str(ROOT)}
        for key, value in self.env(user, **env).items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        done = subprocess.run([sys.executable, "-m", "capa", *args], capture_output=True,
                              text=True, env=merged, stdin=subprocess.DEVNULL, timeout=120,
                              cwd=self.folder)
        outcome = Outcome(done.returncode, done.stdout, done.stderr)
        assert "Traceback" not in outcome.stdout + outcome.stderr
        return outcome

    def write(self, *args: str, user: str = QUALITY_MANAGER) -> dict[str, Any]:
        """A write that must succeed; returns its --json result."""
        outcome = self.run("--json", *args, user=user)
        assert outcome.code == 0, outcome.stderr
        assert outcome.stderr == ""
        result: dict[str, Any] = outcome.json()
        assert {"id", "status", "version"} <= set(result)
        return result

    def refused(self, *args: str, code: int, user: str | None = QUALITY_MANAGER,
                rule: str | None = None, **env: str | None) -> dict[str, Any]:
        """A command that must be refused with `code`, writing nothing; returns the error."""
        before = self.events()
        outcome = self.run("--json", *args, user=user, **env)
        assert outcome.code == code, (outcome.stdout, outcome.stderr)
        assert outcome.stdout == ""
        assert self.events() == before
        error = outcome.error()
        assert error["code"] == code
        assert error["message"]
        if rule is not None:
            assert error["rule"] == rule
            assert rule in error["message"]
        return error

    # -- the store -------------------------------------------------------------------------

    def events(self) -> int:
        if not self.db.exists():
            return 0
        with sqlite3.connect(self.db) as db:
            return int(db.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0])

    def topics(self) -> list[str]:
        with sqlite3.connect(self.db) as db:
            return [row[0] for row in db.execute("SELECT topic FROM stored_events ORDER BY rowid")]

    def init(self) -> None:
        admin = next(iter(CAST))
        outcome = self.run("init", "--admin", admin, "--full-name", CAST[admin][0],
                           "--org", "Northwind Medical Devices", user=admin)
        assert outcome.code == 0, outcome.stderr
        for user, (name, roles) in CAST.items():
            if user == admin:
                for role in set(roles) - {"admin"}:
                    assert self.run("user", "grant", user, role, user=admin).code == 0
                continue
            role_options = [part for role in roles for part in ("--role", role)]
            added = self.run("user", "add", user, "--full-name", name, *role_options,
                             user=admin, CAPA_NEW_PASSWORD=PASSWORD)
            assert added.code == 0, added.stderr

    # -- building records ------------------------------------------------------------------

    def day(self, offset: int) -> str:
        return (self.today + dt.timedelta(days=offset)).isoformat()

    def nc(self, title: str = "Cracked housing") -> str:
        return str(self.write("nc", "raise", "--title", title, "--description",
                              "Hairline crack at boss B2", "--source", "customer-complaint",
                              "--severity", "major", user=REPORTER)["id"])

    def assessed_nc(self, title: str = "Cracked housing", capa_required: bool = True) -> str:
        ref = self.nc(title)
        decision = ["--capa-required"] if capa_required else [
            "--no-capa-required", "--rationale", "Isolated, caught before release"]
        self.write("nc", "assess", ref, "--impact", "4", "--likelihood", "3", *decision,
                   user=QUALITY_ENGINEER)
        return ref

    def ca(self, *ncs: str, owner: str = OWNER) -> str:
        options = [part for nc in ncs for part in ("--nc", nc)]
        return str(self.write("ca", "open", "--title", "Housing cracks", "--problem",
                              "Cracks at boss B2", "--owner", owner, *options,
                              user=QUALITY_ENGINEER)["id"])

    def planned_ca(self, *ncs: str) -> str:
        ref = self.ca(*ncs)
        self.write("ca", "investigate", ref, "--method", "5-whys", "--root-cause",
                   "Worn gate insert", "--category", "machine", "--why", "Boss cracks",
                   user=OWNER)
        self.write("ca", "plan", ref, "--action", "Sort lot L2311", "--assignee", TECHNICIAN,
                   "--due", self.day(10), "--type", "correction", user=OWNER)
        self.write("ca", "plan", ref, "--action", "Replace gate insert", "--assignee", OWNER,
                   "--due", self.day(20), "--type", "corrective", user=OWNER)
        return ref

    def approved_ca(self, *ncs: str) -> str:
        ref = self.planned_ca(*ncs)
        self.write("ca", "approve", ref, user=QUALITY_MANAGER)
        return ref

    def implemented_ca(self, *ncs: str) -> str:
        ref = self.approved_ca(*ncs)
        self.write("ca", "complete", ref, "A1", "--note", "312 sorted", user=TECHNICIAN)
        self.write("ca", "complete", ref, "A2", "--note", "Insert replaced", user=OWNER)
        return ref

    def verified_ca(self, *ncs: str) -> str:
        ref = self.implemented_ca(*ncs)
        self.write("ca", "verify", ref, "--effective", "--note", "No cracks in 3 lots",
                   user=VERIFIER)
        return ref


@pytest.fixture
def fresh(tmp_path: Path) -> Capa:
    """A folder without a store yet."""
    return Capa(tmp_path)


@pytest.fixture
def capa(fresh: Capa) -> Iterator[Capa]:
    """A store made with `capa init`, with every user of the cast added."""
    fresh.init()
    yield fresh
