"""The layout of a PDF as a viewer shows it, read with pdfplumber: every word with its box, each
page's text by lines, and the checks the report tests share (words inside the text area, none
drawn over another, signature blocks read back whole)."""

from __future__ import annotations

import io
import re
from typing import Any

import pdfplumber

MM = 72 / 25.4
# The text area of an A4 page as capa sets it: 10 mm left, top and right, 15 mm at the bottom.
PAGE_W, PAGE_H = 210 * MM, 297 * MM
LEFT, TOP, RIGHT, BOTTOM = 10 * MM, 10 * MM, PAGE_W - 10 * MM, PAGE_H - 15 * MM
SLACK = 0.75  # points: a glyph's box may overhang its cell by a hair, not by a letter

def pages(content: bytes) -> list[tuple[list[dict[str, Any]], str]]:
    """Each page's words (text and box, in points from the top left) and its text by lines."""
    with pdfplumber.open(io.BytesIO(content)) as pdf:
        return [(p.extract_words(keep_blank_chars=False, use_text_flow=True),
                 p.extract_text(use_text_flow=True) or "") for p in pdf.pages]


def assert_inside_text_area(content: bytes) -> None:
    found = pages(content)
    assert found, "the report has pages"
    for number, (words, _) in enumerate(found, 1):
        assert words, f"page {number} is blank"
        for w in words:
            where = f"page {number}: {w['text']!r} at x {w['x0']:.1f}..{w['x1']:.1f}, " \
                    f"y {w['top']:.1f}..{w['bottom']:.1f}"
            assert w["x0"] >= LEFT - SLACK and w["x1"] <= RIGHT + SLACK, "off the side: " + where
            assert w["top"] >= TOP - SLACK and w["bottom"] <= BOTTOM + SLACK, \
                "off the top or bottom: " + where
        # Two words drawn over each other are as unreadable as a word off the page.
        boxes = sorted(words, key=lambda w: (w["top"], w["x0"]))
        for i, a in enumerate(boxes):
            for b in boxes[i + 1:]:
                if b["top"] >= a["bottom"] - SLACK:
                    break
                overlap_x = min(a["x1"], b["x1"]) - max(a["x0"], b["x0"])
                assert overlap_x <= SLACK, f"page {number}: {a['text']!r} overlaps {b['text']!r}"


def signature_blocks(content: bytes) -> list[tuple[int, str, str]]:
    """(page, label, the text of the block under it) for every signature on every page."""
    blocks = []
    for number, (_, text) in enumerate(pages(content), 1):
        lines = text.splitlines()
        for i, line in enumerate(lines):
            if line.startswith("Signature - "):
                body: list[str] = []
                for follower in lines[i + 1:]:
                    if re.match(r"(Signature - |D\d |Iteration \d)", follower):
                        break
                    body.append(follower)
                blocks.append((number, line.removeprefix("Signature - "), "\n".join(body)))
    return blocks
