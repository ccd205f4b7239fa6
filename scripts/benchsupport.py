"""Stores for the benchmarks, built through the application service."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from capa.app.store import open_store

QUALITY = "bench-quality"
OWNER = "bench-owner"


def auth_env() -> dict[str, str]:
    return {"CAPA_USER": QUALITY}


def make_store(path: Path) -> Path:
    app = open_store(str(path), create=True)
    with app.acting_as(QUALITY):
        app.initialise("Bench")
    return path


def long_ca(path: Path, events: int) -> tuple[Any, str, int]:
    """A CA whose history has `events` events (repeated root-cause analyses)."""
    make_store(path)
    app = open_store(str(path))
    with app.acting_as(QUALITY):
        ref = app.open_ca(title="Long history", problem="Bench", owner=OWNER).id
    with app.acting_as(OWNER):
        for n in range(events - 1):
            app.investigate_ca(ref, method="other", category="method",
                               root_cause=f"Analysis number {n}")
    return app, ref, events // 2 + 7
