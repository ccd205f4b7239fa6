"""The 8D report as PDF, with fpdf2 (pure Python, no system libraries).

The text is set in DejaVu Sans, shipped in `capa/reports/fonts/` (licence alongside) and
embedded as a subset of the glyphs used, so every printed name is shown as written (21 CFR
11.50) in any script DejaVu covers: Latin with every diacritic, Greek, Cyrillic, Vietnamese and
more. Text is NFC-normalised so that letters and their accents print as the composed glyph. A
character DejaVu has no glyph for (CJK ideographs, for one) is printed as its code point, e.g.
`<U+5C71>`, never silently as "?"; the Markdown and HTML reports carry it as is. So is a
control character (a terminal escape, a bell); a tab prints as spaces.
"""

from __future__ import annotations

import math
import unicodedata
from pathlib import Path
from typing import Any, Literal

from fpdf import FPDF
from fpdf.enums import Align, MethodReturnValue, XPos, YPos
from fpdf.fonts import FontFace, TTFFont

from capa.reports.control_chart import ControlLimits
from capa.reports.eightd import Report, manifestation

FONT_DIR = Path(__file__).resolve().parent / "fonts"
FAMILY = "DejaVu"
FONT_FILES = {"": FONT_DIR / "DejaVuSans.ttf", "B": FONT_DIR / "DejaVuSans-Bold.ttf"}


TABLE_LINE = 4.5  # mm: a table's line height
# A table column is made wide enough for its longest word when that word is at most WORD_CAP mm
# (an id, a UTC time to the microsecond, a user name: these never break); a column holding a
# longer unbroken word (a part number, a URL) wraps it and starts from WRAPPED mm.
WORD_CAP = 52.0
WRAPPED = 20.0
CELL_PADDING = 2.5  # mm: a cell's inner margins and a little air
CHART_HEIGHT = 35.0  # mm: the plot of a chart of monthly counts


class _Writer:
    """An A4 document in DejaVu Sans that prints a character absent from the font as its code
    point, and sets every block from the left margin across the text width, so no line runs
    past the right edge (fpdf2's `multi_cell` otherwise leaves the cursor at its right end)."""

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
        # Line ends are kept, a tab becomes spaces, and any other control character (a terminal
        # escape, a bell, NUL) is printed as its code point like a character with no glyph:
        # the font has none, so it would otherwise vanish from the page.
        value = value.replace("\r\n", "\n").replace("\r", "\n").replace("\t", "    ")
        return "".join(
            c if c == "\n" or (ord(c) in covered and unicodedata.category(c) != "Cc")
            else f"<U+{ord(c):04X}>"
            for c in unicodedata.normalize("NFC", value))

    def paragraph(self, value: str, size: float, height: float, style: str = "",
                  border: Literal[0, 1] | str = 0) -> None:
        self.pdf.set_font(FAMILY, style, size)
        # Left-aligned, not justified: a justified line with one long unbroken word (a part
        # number, a URL) is stretched into gaps that read as missing words. A word wider than
        # the line is broken across lines by fpdf2, never cut.
        self.pdf.multi_cell(self.pdf.epw, height, self.text(value, style), border=border,
                            align=Align.L, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def height(self, value: str, size: float, height: float, style: str = "",
               width: float | None = None) -> float:
        """The height `paragraph` (or a table cell `width` mm wide) would take, in mm, without
        drawing it."""
        self.pdf.set_font(FAMILY, style, size)
        lines = self.pdf.multi_cell(self.pdf.epw if width is None else width, height,
                                    self.text(value, style), align=Align.L, dry_run=True,
                                    output=MethodReturnValue.LINES)
        assert isinstance(lines, list)
        return len(lines) * height

    def lead(self, kind: str, body: Any) -> float:
        """The height of what must stay with the heading above a block: a few lines of a
        paragraph, a table's heading and first row, or a whole signature."""
        if kind == "p":
            return min(self.height(body, 9, 5), 15.0)
        if kind == "chart":
            return CHART_HEIGHT + 12
        if kind == "table":
            headers, rows = body
            widths = self.column_widths(headers, rows)
            if self.as_list(headers, rows, widths):
                return min(self.height(f"{headers[0]}: {rows[0][0]}", 9, 5), 15.0)
            # fpdf2 moves a row that does not fit to the next page: keep it whole with the
            # table's heading (and so with the section heading above).
            return 2 + self.row_height(headers, widths, "B") + self.row_height(rows[0], widths)
        label, sig = body
        return (self.height(f"Signature - {label}", 9, 5, "B")
                + self.height(manifestation(sig), 9, 5))

    def keep(self, height: float) -> None:
        """Start a new page unless `height` mm fit on this one (a block taller than a page is
        left to break where it must)."""
        pdf = self.pdf
        if pdf.will_page_break(height) and pdf.get_y() > pdf.t_margin + 1:
            pdf.add_page()

    def row_height(self, row: list[str], widths: tuple[float, ...], style: str = "") -> float:
        inner = [w - 2 * self.pdf.c_margin for w in widths]
        return max(self.height(c, 9, TABLE_LINE, style, w)
                   for c, w in zip(row, inner, strict=True))

    def as_list(self, headers: list[str], rows: list[list[str]],
                widths: tuple[float, ...]) -> bool:
        """Whether a table must be set as a list of "column: value" lines: fpdf2 cannot split
        a table row across pages, and a row longer than a page (a very long note) would not
        print."""
        room = self.pdf.eph - self.row_height(headers, widths, "B") - 2
        return any(self.row_height(row, widths) > room for row in rows)

    def table(self, headers: list[str], rows: list[list[str]]) -> None:
        pdf = self.pdf
        pdf.set_font(FAMILY, "", 9)
        widths = self.column_widths(headers, rows)
        if self.as_list(headers, rows, widths):
            for values in rows:
                for header, value in zip(headers, values, strict=True):
                    self.paragraph(f"{header}: {value}", 9, 5, border="L")
                pdf.ln(1)
            return
        with pdf.table(headings_style=FontFace(emphasis="BOLD"), line_height=TABLE_LINE,
                       text_align="LEFT", col_widths=widths, width=pdf.epw,
                       repeat_headings=1) as table:
            heading = table.row()
            for h in headers:
                heading.cell(self.text(h, "B"))
            for values in rows:
                row = table.row()
                for value in values:
                    row.cell(self.text(value))
        pdf.set_x(pdf.l_margin)

    def chart(self, title: str, labels: list[str], counts: list[int],
              limits: ControlLimits | None) -> None:
        """Monthly counts as bars across the text width, with the c-chart's centre line and
        control limits dashed, and each month's label under its bar."""
        pdf = self.pdf
        self.paragraph(title, 9, 5, "B")
        left, top, width = pdf.l_margin + 8, pdf.get_y() + 2, pdf.epw - 8
        highest = max([*counts, limits.ucl if limits else 0, 1])
        scale = CHART_HEIGHT / highest
        pdf.set_draw_color(180)
        pdf.line(left, top + CHART_HEIGHT, left + width, top + CHART_HEIGHT)
        pdf.set_font(FAMILY, "", 6)
        pdf.set_xy(pdf.l_margin, top - 1)
        pdf.cell(7, 3, f"{highest:.0f}", align=Align.R)
        slot = width / max(len(counts), 1)
        pdf.set_fill_color(43, 108, 176)
        for i, n in enumerate(counts):
            h = n * scale
            if h:
                pdf.rect(left + slot * i + slot * 0.15, top + CHART_HEIGHT - h, slot * 0.7, h,
                         style="F")
        if limits is not None:
            pdf.set_draw_color(197, 48, 48)
            with pdf.local_context(dash_pattern={"dash": 1.5, "gap": 1}):
                for value in (limits.ucl, limits.centre, limits.lcl):
                    y = top + CHART_HEIGHT - value * scale
                    pdf.line(left, y, left + width, y)
        # Back to the document's colours: a table's cells take the current fill colour.
        pdf.set_draw_color(0)
        pdf.set_fill_color(255)
        every = max(1, math.ceil(len(labels) * 10 / width))  # labels about 10 mm apart
        for i, label in enumerate(labels):
            if i % every == 0:
                pdf.set_xy(left + slot * i, top + CHART_HEIGHT + 0.5)
                pdf.cell(max(slot * every, 10), 3, self.text(label))
        pdf.set_xy(pdf.l_margin, top + CHART_HEIGHT + 4)
        if limits is not None:
            self.paragraph(f"Dashed: UCL {limits.ucl:.2f}, centre {limits.centre:.2f}, "
                           f"LCL {limits.lcl:.2f}", 7, 4)

    def column_widths(self, headers: list[str], rows: list[list[str]]) -> tuple[float, ...]:
        """Column widths in mm: each column at least as wide as its longest word (see WORD_CAP),
        the rest of the text width shared by how much more each column's longest line would
        want; if even the floors are too wide, the widest columns give way first."""
        pdf = self.pdf

        def width(value: str, style: str = "") -> float:
            pdf.set_font(FAMILY, style, 9)
            return float(pdf.get_string_width(self.text(value, style)))

        need: list[float] = []
        want: list[float] = []
        for i, header in enumerate(headers):
            cells = [r[i] for r in rows]
            words = [width(w, "B") for w in header.split()] + [
                width(w) for c in cells for w in c.split()]
            lines = [width(header, "B")] + [width(line) for c in cells for line in c.splitlines()]
            longest = max(words, default=0)
            need.append((longest if longest <= WORD_CAP else WRAPPED) + CELL_PADDING)
            want.append(max(need[-1], min(pdf.epw, max(lines, default=0)) + CELL_PADDING))
        spare = pdf.epw - sum(need)
        if spare <= 0:
            # Lower a common ceiling until the columns fit: narrow columns (ids, states) keep
            # their words whole while the widest ones wrap.
            ceiling = max(need)
            while sum(min(n, ceiling) for n in need) > pdf.epw and ceiling > CELL_PADDING + 1:
                ceiling -= 0.5
            capped = [min(n, ceiling) for n in need]
            return tuple(c * pdf.epw / sum(capped) for c in capped)
        more = [w - n for w, n in zip(want, need, strict=True)]
        if sum(more) <= spare:
            return tuple(w * pdf.epw / sum(want) for w in want)
        return tuple(n + spare * m / sum(more) for n, m in zip(need, more, strict=True))


def to_pdf(report: Report) -> bytes:
    """The report as PDF. A heading is kept on one page with the start of what follows it, a
    table's heading with its first row, and a signature's label with its whole manifestation."""
    doc = _Writer(report.heading)
    pdf = doc.pdf
    doc.paragraph(f"{report.heading}: {report.title}", 16, 8, "B")
    doc.paragraph(report.summary if report.summary is not None else
                  f"Status {report.status}, version {report.version}. {report.organisation} "
                  f"Generated {report.generated_at}.", 10, 5)
    for section in report.sections:
        pdf.ln(3)
        doc.keep(7 + (doc.lead(*section.blocks[0]) if section.blocks else 0))
        doc.paragraph(f"{section.code} {section.title}", 13, 7, "B")
        for kind, body in section.blocks:
            if kind == "p":
                doc.paragraph(body, 9, 5)
                pdf.ln(1)
            elif kind == "table":
                doc.keep(doc.lead(kind, body))
                doc.table(*body)
                pdf.ln(1)
            elif kind == "chart":
                doc.keep(CHART_HEIGHT + 12)
                doc.chart(*body)
                pdf.ln(2)
            else:
                label, sig = body
                # A manifestation is read as one statement (21 CFR 11.50): keep it on one page
                # with its label.
                doc.keep(doc.lead(kind, body))
                doc.paragraph(f"Signature - {label}", 9, 5, "B")
                doc.paragraph(manifestation(sig), 9, 5, border="L")
                pdf.ln(1)
    return bytes(pdf.output())
