"""The 8D report as PDF, with fpdf2 (pure Python, no system libraries).

The text is set in DejaVu Sans, shipped in `capa/reports/fonts/` (licence alongside) and
embedded as a subset of the glyphs used, so every printed name is shown as written (21 CFR
11.50) in any script DejaVu covers: Latin with every diacritic, Greek, Cyrillic, Vietnamese and
more. Text is NFC-normalised so that letters and their accents print as the composed glyph. A
character DejaVu has no glyph for (CJK ideographs, for one) is printed as its code point, e.g.
`<U+5C71>`, never silently as "?"; the Markdown and HTML reports carry it as is.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from fpdf import FPDF
from fpdf.fonts import FontFace, TTFFont

if TYPE_CHECKING:
    from capa.reports.eightd import Report

FONT_DIR = Path(__file__).resolve().parent / "fonts"
FAMILY = "DejaVu"
FONT_FILES = {"": FONT_DIR / "DejaVuSans.ttf", "B": FONT_DIR / "DejaVuSans-Bold.ttf"}


class _Writer:
    """An A4 document in DejaVu Sans that prints a character absent from the font as its code
    point."""

    def __init__(self, title: str) -> None:
        self.pdf = FPDF(format="A4")
        for style, path in FONT_FILES.items():
            self.pdf.add_font(FAMILY, style, str(path))
        # The code points each style has a glyph for (the bold face covers slightly fewer).
        self.covered: dict[str, frozenset[int]] = {}
        for style in FONT_FILES:
            font = self.pdf.fonts[FAMILY.lower() + style]
            assert isinstance(font, TTFFont)
            self.covered[style] = frozenset(font.cmap)
        self.pdf.set_title(unicodedata.normalize("NFC", title))
        self.pdf.set_creator("capa")
        self.pdf.set_auto_page_break(auto=True, margin=15)
        self.pdf.add_page()

    def text(self, value: str, style: str = "") -> str:
        covered = self.covered[style]
        return "".join(
            c if ord(c) in covered or unicodedata.category(c) == "Cc" else f"<U+{ord(c):04X}>"
            for c in unicodedata.normalize("NFC", value))

    def paragraph(self, value: str, size: float, height: float, style: str = "",
                  border: Literal[0, 1] | str = 0) -> None:
        self.pdf.set_font(FAMILY, style, size)
        self.pdf.multi_cell(self.pdf.epw, height, self.text(value, style), border=border)


def to_pdf(report: Report) -> bytes:
    from capa.reports.eightd import manifestation

    doc = _Writer(f"8D report {report.record}")
    pdf = doc.pdf
    doc.paragraph(f"8D report {report.record}: {report.title}", 16, 8, "B")
    doc.paragraph(f"Status {report.status}, version {report.version}. {report.organisation} "
                  f"Generated {report.generated_at}.", 10, 5)
    for section in report.sections:
        pdf.ln(3)
        doc.paragraph(f"{section.code} {section.title}", 13, 7, "B")
        for kind, body in section.blocks:
            if kind == "p":
                doc.paragraph(body, 9, 5)
                pdf.ln(1)
            elif kind == "table":
                headers, rows = body
                pdf.set_font(FAMILY, "", 9)
                with pdf.table(headings_style=FontFace(emphasis="BOLD"), line_height=4.5,
                               text_align="LEFT") as table:
                    heading = table.row()
                    for h in headers:
                        heading.cell(doc.text(h, "B"))
                    for values in rows:
                        row = table.row()
                        for value in values:
                            row.cell(doc.text(value))
                pdf.ln(1)
            else:
                label, sig = body
                doc.paragraph(f"Signature - {label}", 9, 5, "B")
                doc.paragraph(manifestation(sig), 9, 5, border="L")
                pdf.ln(1)
    return bytes(pdf.output())
