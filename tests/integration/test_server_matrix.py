"""The role × command matrix through `capa serve` (SPEC §11): every command of the command line's
matrix (tests/cli/test_auth_matrix.py), run by the command line as a client of a real server on
a copy of the same store, is refused for exactly the roles the permission table refuses (exit
4, no event, no row of any table changed) and runs for a role it admits. The server, not the
client, decides: the client machine holds no store, no key and no database credential.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.test_auth_matrix import (
    ACCOUNTS,
    COMMANDS,
    PASSWORD,
    USER,
    Store,
    _build,
    args_of,
    expected_allowed,
)
from tests.support.backends import clone_target, discard_target, new_target
from tests.support.server import Server, serving

#: Commands that read the store's key or checkpoint log where the store is: through a server
#: they are refused for everyone with exit 2 (docs/server.md), so the matrix has nothing to say.
ON_THE_STORE_ONLY = {"audit checkpoint", "audit verify", "audit prove"}
#: Reads, and writes that record no event (capa.cli test_auth_matrix's READS, NO_EVENT_WRITES).
NO_EVENT = {"nc show", "nc list", "ca show", "ca list", "history", "evidence list", "overdue",
            "user list", "user token list", "notify", "webhook deliver", "webhook list",
            "webhook deliveries", "whoami", "user passwd", "audit review", "management-review",
            "store info", "readmodels rebuild"}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str],
                                                                         Path]]:
    folder = tmp_path_factory.mktemp("server-matrix")
    target = new_target("sqlite", folder)
    refs = _build(target, folder / "matrix.key")
    yield target, refs, folder / "matrix.key"
    discard_target(target)


def client(server: Server, folder: Path, user: str, args: list[str],
           env: dict[str, str]) -> tuple[int, str]:
    """The command line on a machine that has only the server's URL and the user's password."""
    given: dict[str, str | None] = {"CAPA_NEW_PASSWORD": None, "CAPA_WEBHOOK_KEY": None, **env}
    outcome = server.cli(*args, user=user, password=PASSWORD, **given)
    return outcome.code, outcome.stderr


@pytest.mark.sqlite_only("the server is the same for both back ends; test_server.py runs both")
@pytest.mark.parametrize("command", sorted(set(COMMANDS) - ON_THE_STORE_ONLY))
def test_role_matrix_through_the_server(backend: str, template: tuple[str, dict[str, str], Path],
                                        tmp_path: Path, command: str) -> None:
    source, refs, key = template
    store = Store(tmp_path, clone_target("sqlite", source, tmp_path), refs, key)
    args, env = args_of(command, refs)
    refused = [role for role in ACCOUNTS if not expected_allowed(command, role)]
    allowed = [role for role in ACCOUNTS if expected_allowed(command, role)]
    try:
        with serving(store.target, tmp_path, CAPA_KEY=str(key),
                     CAPA_CHECKPOINTS=str(store.checkpoints)) as server:
            before, contents = store.events(), store.contents()
            for role in refused:
                code, err = client(server, tmp_path, USER[role], args, env)
                assert code == 4, (role, code, err)
                assert "may not" in err, (role, err)
                assert store.events() == before, f"a refused {command} by {role} wrote an event"
                assert store.contents() == contents, f"a refused {command} changed the store"
            if allowed:
                code, err = client(server, tmp_path, USER[allowed[0]], args, env)
                assert code == 0, (allowed[0], code, err)
                if command not in NO_EVENT:
                    assert len(store.events()) > len(before), f"{command} wrote nothing"
    finally:
        discard_target(store.target)
