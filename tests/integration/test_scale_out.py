"""Several `capa serve` processes on one PostgreSQL store behave as one (SPEC §11): eight clients
raising and containing NCs through two servers (one of them with two workers) lose no event and
write none twice, NC numbers stay unique and gap-free, the read tables agree with the records,
and the audit trail checkpoints and verifies. A SQLite store refuses more than one worker."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from capa.app.store import open_store
from tests.support.backends import (
    ADMIN,
    PASSWORD,
    REPORTER,
    cli_env,
    close_all,
    create_store,
    discard_target,
    event_count,
    new_target,
    run_cli,
)
from tests.support.cast import FULL_NAMES
from tests.support.server import Server, serving

CLIENTS, EACH = 8, 5


@pytest.fixture
def postgres_store(tmp_path: Path) -> Iterator[str]:
    """A PostgreSQL store made by `capa init` (so it has its key), with a reporter."""
    target = new_target("postgres", tmp_path)
    made = subprocess.run([sys.executable, "-m", "capa", "--db", target, "init", "--admin",
                           ADMIN, "--full-name", FULL_NAMES[ADMIN]], env=_env(tmp_path),
                          capture_output=True, text=True, cwd=tmp_path, check=False)
    assert made.returncode == 0, made.stderr
    store = open_store(target)
    with store.acting_as(ADMIN, PASSWORD):
        store.identity.add_user(REPORTER, full_name=FULL_NAMES[REPORTER], roles=["reporter"],
                                password=PASSWORD)
    close_all([store])
    yield target
    discard_target(target)


def _env(folder: Path) -> dict[str, str]:
    # The store's key and checkpoint log are files of the server's machine (SPEC §9.4).
    return cli_env(ADMIN, CAPA_KEY=str(folder / "capa.key"),
                   CAPA_CHECKPOINTS=str(folder / "capa.checkpoints"))


def _login(server: Server) -> dict[str, str]:
    status, opened = server.post("/v1/identity/login", {"user": REPORTER, "password": PASSWORD})
    assert status == 200, opened
    return {"Authorization": f"Bearer {REPORTER}:{opened['token']}"}


def test_two_servers_on_one_postgresql_store_behave_as_one(postgres_store: str,
                                                           tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with serving(postgres_store, tmp_path / "a", "--workers", "2") as first, \
            serving(postgres_store, tmp_path / "b") as second:
        servers = [first, second]
        shared = first.post("/v1/nonconformities/raise_nc",
                            {"title": "Shared burr", "description": "Seen on every line",
                             "source": "process", "severity": "minor"}, user=REPORTER)
        assert shared[0] == 200
        before = event_count(postgres_store)

        def client(i: int) -> list[tuple[str, int, Any]]:
            server = servers[i % 2]
            bearer = _login(server)
            answers = []
            for n in range(EACH):
                raised = server.post("/v1/nonconformities/raise_nc",
                                     {"title": f"Burr {i}-{n}", "description": "Seen",
                                      "source": "supplier", "severity": "minor"},
                                     headers={**bearer, "Idempotency-Key": f"r-{i}-{n}"})
                answers.append(("raised", *raised))
                if raised[0] == 200:
                    answers.append(("contained", *server.post(
                        "/v1/nonconformities/contain_nc",
                        {"ref": raised[1]["id"], "action": f"Quarantined lot {i}-{n}"},
                        headers={**bearer, "Idempotency-Key": f"c-{i}-{n}"})))
            # Every client contains the shared NC too: the two servers race on one record.
            answers.append(("shared", *server.post(
                "/v1/nonconformities/contain_nc",
                {"ref": shared[1]["id"], "action": f"Sorted by client {i}"},
                headers={**bearer, "Idempotency-Key": f"s-{i}"})))
            return answers

        with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
            answers = [a for run in pool.map(client, range(CLIENTS)) for a in run]
        refused = [a for a in answers if a[1] != 200]
        assert not refused, refused[:3]
        assert len(answers) == CLIENTS * (2 * EACH + 1)

        # No event lost, none twice (and each client's login is an event of the account).
        assert event_count(postgres_store) == before + CLIENTS * (2 * EACH + 1) + CLIENTS
        # Unique, gap-free numbers.
        year = dt.datetime.now(dt.UTC).year
        ids = sorted(body["id"] for kind, _, body in answers if kind == "raised")
        assert ids == [f"NC-{year}-{n:04d}" for n in range(2, CLIENTS * EACH + 2)]
        # The read tables, through either server, agree with the records themselves.
        for server in servers:
            status, listed = server.post("/v1/queries/list_records", {"kind": "nc"},
                                         user=ADMIN)
            assert status == 200, listed
            assert {r["id"]: r["status"] for r in listed} == \
                {shared[1]["id"]: "contained", **dict.fromkeys(ids, "contained")}
        status, record = second.post("/v1/records/show", {"ref": shared[1]["id"]}, user=ADMIN)
        assert status == 200 and record["version"] == 1 + CLIENTS
        assert sorted(body["version"] for kind, _, body in answers if kind == "shared") == \
            list(range(2, CLIENTS + 2))
        assert all(body["version"] == 2 for kind, _, body in answers if kind == "contained")

    env = _env(tmp_path)
    for command in (["audit", "checkpoint"], ["audit", "verify"]):
        done = subprocess.run([sys.executable, "-m", "capa", "--db", postgres_store, "--json",
                               *command], env=env, capture_output=True, text=True,
                              cwd=tmp_path, check=False, timeout=300)
        assert done.returncode == 0, (command, done.stdout, done.stderr)


@pytest.mark.sqlite_only("several workers are refused for a SQLite store")
def test_a_sqlite_store_refuses_more_than_one_worker(store_target: str,
                                                     tmp_path: Path) -> None:
    close_all([create_store(store_target)])
    before = event_count(store_target)
    refused = run_cli(store_target, ADMIN, ["serve", "--workers", "2", "--port", "0"],
                      cwd=tmp_path, timeout=60)
    assert refused.returncode == 2
    error = json.loads(refused.stderr)["error"]
    assert "PostgreSQL" in error["message"] and error["code"] == 2
    assert len(refused.stderr.strip().splitlines()) == 1
    assert event_count(store_target) == before


@pytest.mark.sqlite_only("the worker factory reads its store from the environment")
def test_the_worker_factory_serves_the_store_capa_db_names(
        store_target: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from capa.domain.errors import InvalidInput
    from capa.server.api import create_app

    monkeypatch.delenv("CAPA_DB", raising=False)
    with pytest.raises(InvalidInput, match="CAPA_DB"):
        create_app()
    close_all([create_store(store_target)])
    monkeypatch.setenv("CAPA_DB", store_target)
    paths = {getattr(route, "path", "") for route in create_app().routes}
    assert {"/health", "/v1/nonconformities/raise_nc"} <= paths
