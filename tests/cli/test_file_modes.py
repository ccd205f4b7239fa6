"""SPEC §9.10: the store's files, its key, its checkpoint log and session files are created
0600 whatever the umask (the public key 0644: every verifier reads it, no one else writes it)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from capa.app.store import open_store

if TYPE_CHECKING:
    from conftest import Capa


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The most permissive umask: nothing is taken away from the modes files are created with."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def test_store_key_log_and_session_are_private_under_umask_000(fresh: Capa,
                                                               open_umask: None) -> None:
    done = fresh.run("init", "--admin", "mhernandez", "--full-name", "Maria Hernandez",
                     user=None, CAPA_PASSWORD=fresh.password)
    assert done.code == 0, done.stderr
    log = (Path(f"{fresh.target}.checkpoints") if fresh.backend == "sqlite"
           else fresh.folder / "capa-audit.checkpoints")
    assert mode(fresh.key) == 0o600
    assert mode(log) == 0o600
    assert mode(Path(f"{fresh.key}.pub")) == 0o644
    assert fresh.run("audit", "checkpoint", user="mhernandez").code == 0
    assert mode(log) == 0o600 and log.read_text()
    assert fresh.run("login", user="mhernandez").code == 0
    assert mode(fresh.sessions / "session.json") == 0o600
    if fresh.backend != "sqlite":
        return
    # While the store is open and written, SQLite's journal files exist: private as well.
    app = open_store(fresh.target)
    try:
        with app.acting_as("mhernandez", fresh.password):
            app.identity.add_user("jchen", full_name="Jun Chen", roles=["quality"],
                                  password=fresh.password)
        for suffix in ("", "-wal", "-shm"):
            path = Path(fresh.target + suffix)
            assert path.exists(), suffix
            assert mode(path) == 0o600, (suffix, oct(mode(path)))
    finally:
        app.close()


def test_a_log_started_by_the_first_checkpoint_is_private(capa: Capa, open_umask: None) -> None:
    """A store of an earlier release has no log until its first checkpoint."""
    log = (Path(f"{capa.target}.checkpoints") if capa.backend == "sqlite"
           else capa.folder / "capa-audit.checkpoints")
    log.unlink()
    assert capa.run("audit", "checkpoint").code == 0
    assert mode(log) == 0o600
