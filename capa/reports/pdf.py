"""The 8D report as PDF, with fpdf2 (pure Python, no system libraries)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fpdf import FPDF
from fpdf.fonts import FontFace

if TYPE_CHECKING:
    from capa.reports.eightd import Report

# The PDF core fonts cover Latin-1 only; these are the common characters beyond it.
_REPLACE = str.maketrans({"\u2014": "-", "\u2013": "-", "\u2019": "'", "\u2018": "'",
                          "\u201c": '"', "\u201d": '"', "\u2026": "...", "\u2265": ">=",
                          "\u2264": "<=", "\u2192": "->", "\u00a0": " ", "\u2022": "*"})


def _latin(text: str) -> str:
    return text.translate(_REPLACE).encode("latin-1", "replace").decode("latin-1")


def to_pdf(report: Report) -> bytes:
    from capa.reports.eightd import manifestation

    pdf = FPDF(format="A4")
    pdf.set_title(_latin(f"8D report {report.record}"))
    pdf.set_creator("capa")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    width = pdf.epw
    pdf.set_font("Helvetica", "B", 16)
    pdf.multi_cell(width, 8, _latin(f"8D report {report.record}: {report.title}"))
    pdf.set_font("Helvetica", "", 10)
    pdf.multi_cell(width, 5, _latin(
        f"Status {report.status}, version {report.version}. {report.organisation} "
        f"Generated {report.generated_at}."))
    for section in report.sections:
        pdf.ln(3)
        pdf.set_font("Helvetica", "B", 13)
        pdf.multi_cell(width, 7, _latin(f"{section.code} {section.title}"))
        pdf.set_font("Helvetica", "", 9)
        for kind, body in section.blocks:
            if kind == "p":
                pdf.multi_cell(width, 5, _latin(body))
                pdf.ln(1)
            elif kind == "table":
                headers, rows = body
                with pdf.table(headings_style=FontFace(emphasis="BOLD"), line_height=4.5,
                               text_align="LEFT") as table:
                    heading = table.row()
                    for h in headers:
                        heading.cell(_latin(h))
                    for values in rows:
                        row = table.row()
                        for value in values:
                            row.cell(_latin(value))
                pdf.ln(1)
            else:
                label, sig = body
                pdf.set_font("Helvetica", "B", 9)
                pdf.multi_cell(width, 5, _latin(f"Signature - {label}"))
                pdf.set_font("Helvetica", "", 9)
                pdf.multi_cell(width, 5, _latin(manifestation(sig)), border="L")
                pdf.ln(1)
    return bytes(pdf.output())
