"""docs/architecture.md and the README's design section name modules that exist, and every service
of the application is in the architecture's table of services."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from capa.app.application import SERVICES

ROOT = Path(__file__).resolve().parents[2]
ARCHITECTURE = ROOT / "docs" / "architecture.md"
README = ROOT / "README.md"
PATH = re.compile(r"`((?:capa|tests|scripts)/[\w/]+(?:\.py)?/?)`")


def design_section() -> str:
    text = README.read_text(encoding="utf-8")
    return text[text.index("## Design"):text.index("## Tests")]


@pytest.mark.parametrize("name, text", [
    ("docs/architecture.md", ARCHITECTURE.read_text(encoding="utf-8")),
    ("README design", design_section()),
])
def test_every_path_named_exists(name: str, text: str) -> None:
    named = PATH.findall(text)
    assert named, f"{name} names no module"
    assert [p for p in named if not (ROOT / p).exists()] == []


def test_every_service_is_in_the_table() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `(\w+)` \| `capa/app/(\w+)\.py`", text, flags=re.M))
    assert {(name, module.rsplit(".", 1)[1]) for name, (module, _cls) in SERVICES.items()} == rows
