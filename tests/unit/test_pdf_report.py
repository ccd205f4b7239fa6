"""The PDF 8D report prints every name as written: DejaVu Sans, shipped with capa and embedded
as a subset, instead of the Latin-1 core fonts."""

from __future__ import annotations

import fnmatch
import tomllib
import unicodedata
from pathlib import Path
from typing import Any

from capa.reports.eightd import Report, Section
from capa.reports.pdf import FONT_DIR, FONT_FILES, to_pdf
from tests.support.pdftext import base_fonts, pdf_text

ROOT = Path(__file__).resolve().parents[2]
NAMES = ["Łukasz Wróblewski", "Antonín Dvořák", "Nguyễn Thị Thu", "Kenji Ōta",
         "Zoë Çelik-Ångström", "Σοφία Παπαδοπούλου", "Дмитрий Иванов"]


def _signature(name: str, user: str) -> dict[str, Any]:
    return {"full_name": name, "user_id": user, "signed_at": "2026-03-01T10:00:00.000000Z",
            "meaning": "approval", "signed_version": 7, "content_sha256": "ab" * 32}


def _report(*names: str) -> Report:
    team = Section("D1", "Team")
    team.table(["user", "name"], [[f"u{i}", name] for i, name in enumerate(names)])
    closure = Section("D8", "Verification and closure")
    closure.text("Verified — no cracks in 6 lots; torque ≥ 1.2 N·m → accepted")
    for i, name in enumerate(names):
        closure.signature(f"Closure by {name}", _signature(name, f"u{i}"))
    return Report(record="CA-2026-0007", title="Gehäuse — Riss", status="closed", version=7,
                  organisation="Łódź Medical", generated_at="2026-03-01T10:00:00Z",
                  sections=[team, closure])


def _words(content: bytes) -> str:
    return " ".join(pdf_text(content).split())


def test_pdf_prints_names_outside_latin1_as_written() -> None:
    content = to_pdf(_report(*NAMES))
    words = _words(content)
    for i, name in enumerate(NAMES):
        assert f"u{i} {name}" in words, "D1 team table"
        assert f"Signature - Closure by {name}" in words
        assert (f"{name} (u{i}), signed 2026-03-01T10:00:00.000000Z (UTC), meaning: approval"
                in words)
    assert "8D report CA-2026-0007: Gehäuse — Riss" in words
    assert "torque ≥ 1.2 N·m → accepted" in words and "Łódź Medical" in words
    assert "?" not in words and "\ufffd" not in words


def test_pdf_embeds_dejavu_sans_subsets_not_core_fonts() -> None:
    content = to_pdf(_report(*NAMES))
    fonts = base_fonts(content)
    assert {f.split("+", 1)[1] for f in fonts} == {"DejaVuSansBook", "DejaVuSansBold"}
    assert all(len(f.split("+", 1)[0]) == 6 for f in fonts), "subset tag: only glyphs used"
    assert b"/FontFile2" in content and b"Helvetica" not in content
    assert len(content) < 60_000, len(content)


def test_pdf_composes_decomposed_accents() -> None:
    decomposed = unicodedata.normalize("NFD", "Nguyễn Thị Thu")
    assert len(decomposed) > len("Nguyễn Thị Thu")
    assert "Nguyễn Thị Thu (u0), signed" in _words(to_pdf(_report(decomposed)))


def test_pdf_prints_a_character_without_a_glyph_as_its_code_point() -> None:
    """DejaVu Sans has no CJK ideographs: the PDF names the code points instead of dropping
    them or printing '?'."""
    words = _words(to_pdf(_report("山田 Taro")))
    assert "<U+5C71><U+7530> Taro (u0), signed" in words
    assert "?" not in words


def test_fonts_and_licence_ship_with_the_package() -> None:
    assert sorted(p.name for p in FONT_DIR.iterdir()) == [
        "DejaVuSans-Bold.ttf", "DejaVuSans.ttf", "LICENSE"]
    assert all(path.stat().st_size > 500_000 for path in FONT_FILES.values())
    licence = (FONT_DIR / "LICENSE").read_text(encoding="utf-8")
    assert "Bitstream Vera" in licence and "Permission is hereby granted" in licence
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    package_data = settings["tool"]["setuptools"]["package-data"]
    patterns = package_data.get("capa.reports", []) + package_data.get("*", [])
    for path in FONT_DIR.iterdir():
        relative = path.relative_to(FONT_DIR.parent).as_posix()
        assert any(fnmatch.fnmatch(relative, p) for p in patterns), f"{relative} not packaged"
