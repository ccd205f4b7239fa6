"""Stores for the benchmarks, built through the application service."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from capa.app.store import open_store

QUALITY = "bench-quality"
OWNER = "bench-owner"
PASSWORD = "bench-password"


def auth_env() -> dict[str, str]:
    return {"CAPA_USER": QUALITY, "CAPA_PASSWORD": PASSWORD}


def make_store(path: Path) -> Path:
    app = open_store(str(path), create=True)
    app.identity.initialise("Bench", admin=QUALITY, full_name="Bench Quality", password=PASSWORD)
    with app.acting_as(QUALITY, PASSWORD):
        app.identity.grant_role(QUALITY, "quality")
        app.identity.add_user(OWNER, full_name="Bench Owner", roles=["owner"], password=PASSWORD)
    return path


def long_ca(path: Path, events: int) -> tuple[Any, str, int]:
    """A CA whose history has `events` events (repeated root-cause analyses)."""
    make_store(path)
    app = open_store(str(path))
    with app.acting_as(QUALITY, PASSWORD):
        ref = app.corrective_actions.open_ca(title="Long history", problem="Bench", owner=OWNER).id
    with app.acting_as(OWNER, PASSWORD):
        for n in range(events - 1):
            app.corrective_actions.investigate_ca(ref, method="other", category="method",
                                                  root_cause=f"Analysis number {n}")
    return app, ref, events // 2 + 7


def compile_capa() -> None:
    """Compile capa's modules to bytecode first, as installing a release does (pip compiles
    what it installs, and did so for eventsourcing, which every baseline imports). A source
    checkout run with PYTHONDONTWRITEBYTECODE would otherwise compile capa on every start."""
    import compileall

    compileall.compile_dir(str(Path(__file__).resolve().parents[1] / "capa"), quiet=1)
