"""Fixtures for the command line: run `capa` in-process (as `main()` does, with its exit codes)
or as a real process, against a store made fresh for each test: a SQLite file, or a PostgreSQL
database given by its URI in CAPA_DB or --db. Every test using `fresh` or `capa` runs once per
back end (see tests/conftest.py)."""

from __future__ import annotations

import datetime as dt
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from capa.adapters.target import parse_target
from tests.support.backends import (
    clone_target,
    discard_target,
    new_target,
    query,
    store_exists,
)
from tests.support.cast import (
    ORGANISATION,
    OWNER,
    PASSWORD,
    PLANT_CREW,
    QUALITY_ENGINEER,
    QUALITY_MANAGER,
    REPORTER,
    TECHNICIAN,
    VERIFIER,
)
from tests.support.cli import ROOT, Outcome, run_capa, run_capa_process

__all__ = ["Capa", "Outcome"]

#: The people `capa init` and `capa user add` put in every store; the first initialises it.
CAST = PLANT_CREW


class Capa:
    """A store (SQLite file or PostgreSQL database) and the environment of the person at the
    keyboard. Commands run in the test's folder; a PostgreSQL store's key is configured there
    (CAPA_KEY=capa-audit.key, so its checkpoint log is capa-audit.checkpoints)."""

    password = PASSWORD
    root = ROOT
    quality_manager = QUALITY_MANAGER
    quality_engineer = QUALITY_ENGINEER
    owner = OWNER
    technician = TECHNICIAN
    verifier = VERIFIER
    reporter = REPORTER

    def __init__(self, folder: Path, target: str) -> None:
        self.folder = folder
        self.target = target
        #: The URL of a `capa serve` of this store that commands go through (client mode),
        #: and how many commands it answered with success.
        self.server_url: str | None = None
        self.served = 0
        self.backend = parse_target(target).kind
        self.sessions = folder / "sessions"
        self.today = dt.datetime.now(dt.UTC).date()
        self.year = dt.datetime.now(dt.UTC).year

    # -- running ---------------------------------------------------------------------------

    def env(self, user: str | None, **extra: str | None) -> dict[str, str | None]:
        env: dict[str, str | None] = {
            "CAPA_DB": self.target, "CAPA_USER": user, "CAPA_PASSWORD": PASSWORD,
            "CAPA_SESSION_DIR": str(self.sessions), "CAPA_DEBUG": None,
            "CAPA_NEW_PASSWORD": None,
        }
        if user is None:
            env["CAPA_PASSWORD"] = None
        if self.backend == "postgres":
            env["CAPA_KEY"] = str(self.folder / "capa-audit.key")
        env.update(extra)
        return env

    def run(self, *args: str, user: str | None = QUALITY_MANAGER,
            **env: str | None) -> Outcome:
        """`capa ARGS` in-process through `main()`, which maps errors to exit codes; in client
        mode through the store's server, but for the commands that work on the store itself."""
        served = self.server_url is not None and not on_the_store(args) and "CAPA_DB" not in env
        if served:
            env = {**env, "CAPA_DB": self.server_url}
        outcome = run_capa(args, env=self.env(user, **env), cwd=self.folder)
        self.served += served and outcome.code == 0
        assert "Traceback" not in outcome.stdout + outcome.stderr
        return outcome

    def process(self, *args: str, user: str | None = QUALITY_MANAGER,
                **env: str | None) -> Outcome:
        """`python -m capa ARGS` as a real process."""
        outcome = run_capa_process(args, env=self.env(user, **env), cwd=self.folder)
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

    @property
    def db(self) -> Path:
        """The SQLite file of the store (for the tests that are about the file itself)."""
        assert self.backend == "sqlite", "a PostgreSQL store has no file"
        return Path(self.target)

    @property
    def key(self) -> Path:
        """Where `capa init` puts the store's key by default."""
        if self.backend == "sqlite":
            return Path(f"{self.target}.key")
        return self.folder / "capa-audit.key"

    def exists(self, target: str | None = None) -> bool:
        """Whether a capa store exists at `target` (default: this one)."""
        return store_exists(target or self.target)

    def elsewhere(self, name: str) -> str:
        """A place on this back end where no store is: a file path in the folder, or the URI
        of a database the server does not have."""
        if self.backend == "sqlite":
            return str(self.folder / name)
        parts = urlsplit(self.target)
        return urlunsplit(parts._replace(path=f"/nowhere_{secrets.token_hex(4)}"))

    def remove(self) -> None:
        """Delete the store (the file, or the database)."""
        if self.backend == "sqlite":
            self.db.unlink()
        else:
            discard_target(self.target)

    def events(self) -> int:
        if not self.exists():
            return 0
        return int(query(self.target, "SELECT COUNT(*) FROM stored_events")[0][0])

    def topics(self) -> list[str]:
        return [row[0] for row in query(self.target,
                                        "SELECT topic FROM stored_events ORDER BY rowid")]

    def init(self) -> None:
        admin = next(iter(CAST))
        outcome = self.run("init", "--admin", admin, "--full-name", CAST[admin][0],
                           "--org", ORGANISATION, user=admin)
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
def fresh(tmp_path: Path, store_target: str) -> Capa:
    """A folder, and a place on the test's back end, without a store yet."""
    return Capa(tmp_path, store_target)


@pytest.fixture(scope="session")
def cli_templates() -> dict[str, Capa]:
    """Per back end, a store made once by `capa init` with the cast added (adding people hashes
    their passwords, slow on purpose); each test gets its own copy."""
    return {}


#: Commands that work on a store, never through a server (docs/server.md).
_ON_THE_STORE = {"init", "demo", "import", "validate", "serve"}


def on_the_store(args: tuple[str, ...]) -> bool:
    words = [a for a in args if not a.startswith("-")]
    if not words:
        return True
    if words[0] in _ON_THE_STORE:
        return True
    if words[0] == "audit":
        return words[1:2] != ["review"]
    return words[:2] == ["store", "copy"]


@pytest.fixture
def capa(fresh: Capa, cli_templates: dict[str, Capa], backend: str,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Capa]:
    """A store made with `capa init`, with every user of the cast added: a copy of the store,
    key and checkpoint log made that way once per back end. In client mode (`[server]`) the
    commands go through a real `capa serve` of the copy."""
    template = cli_templates.get(fresh.backend)
    if template is None:
        folder = tmp_path_factory.mktemp(f"cli-template-{fresh.backend}")
        template = Capa(folder, new_target(fresh.backend, folder))
        template.init()
        cli_templates[fresh.backend] = template
    store = Capa(fresh.folder, clone_target(fresh.backend, template.target, fresh.folder))
    database = {Path(template.target).name + suffix for suffix in ("", "-wal", "-shm")}
    for source in template.folder.iterdir():
        if source.is_file() and (store.backend != "sqlite" or source.name not in database):
            shutil.copy2(source, store.folder / source.name)  # the key keeps its mode 0600
    if backend != "server":
        yield store
        discard_target(store.target)
        return
    from tests.support.server import start, stop

    server = start(store.target, store.folder)
    store.server_url = server.url
    try:
        yield store
    finally:
        log = stop(server)
        discard_target(store.target)
    # The commands did go through the server, and its log holds no credential.
    assert store.served == 0 or "POST /v1/" in log
    assert PASSWORD not in log and "Basic " not in log and "Bearer " not in log
