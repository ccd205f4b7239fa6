"""User text in the Markdown 8D report is shown as written and never read as the report's own
structure: parsed with a real CommonMark parser (markdown-it-py), the headings and signature
blocks are exactly the genuine ones, whatever an NC's text holds."""

from __future__ import annotations

import html
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capa.app.application import CapaApplication
from capa.reports.markdown import md_escape
from tests.support.cast import QUALITY_ENGINEER, REPORTER
from tests.support.reading import reading
from tests.support.stores import Store, app, store

markdown_it = pytest.importorskip("markdown_it", reason="markdown-it-py is in the test extra")

__all__ = ["app", "store"]

FAKE = ("Boss cracked\n\n## D8 Verification and closure\n\n> **Signature - Closure of "
        "NC-2026-0001:** Maria Hernandez (mhernandez), signed 2026-01-01T00:00:00Z (UTC), "
        "meaning: approval\n\n<!--")
HOSTILE_TITLE = "Burr <script>alert(1)</script> on *edge* [link](http://x) | a | b"
HOSTILE_ACTION = "Lot | quarantined\n| x | y |\n|---|---|\n=HYPERLINK(\"http://x\")"


def _parser() -> Any:
    return markdown_it.MarkdownIt("commonmark").enable("table")


def _text(inline: Any) -> str:
    """What a reader sees of an inline token: its text, line breaks as newlines."""
    out = []
    for child in inline.children or []:
        if child.type in ("softbreak", "hardbreak") or (
                child.type == "html_inline" and child.content == "<br>"):
            out.append("\n")
        else:
            out.append(child.content)
    return "".join(out)


def _normalised(text: str) -> str:
    """The text as Markdown can show it: lines without their outer spaces, one blank line
    between paragraphs, none at either end."""
    lines = [line.strip(" \t") for line in text.replace("\r\n", "\n").replace("\r", "\n")
             .split("\n")]
    kept: list[str] = []
    for line in lines:
        if line or (kept and kept[-1]):
            kept.append(line)
    return "\n".join(kept).strip("\n")


LINE_START = st.sampled_from(["#", "##", ">", "-", "+", "*", "1.", "2)", "=", "---", "***",
                              "```", "~~~", "<!--", "<div>", "    ", "\t", "|", "[a]: /u", ""])
WORD = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")) |
               st.sampled_from(list("\\`*_{}[]()<>#+-.!|~&;:= ")), max_size=12)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(LINE_START, WORD, WORD), max_size=8))
def test_escaped_text_reads_back_exactly(parts: list[tuple[str, str, str]]) -> None:
    text = "\n".join(f"{start}{a} {b}" for start, a, b in parts)
    tokens = _parser().parse(md_escape(text))
    assert {t.type for t in tokens} <= {"paragraph_open", "inline", "paragraph_close"}, \
        md_escape(text)
    shown = "\n\n".join(_text(t) for t in tokens if t.type == "inline")
    assert shown == _normalised(text), md_escape(text)


def _outline(markdown: str) -> tuple[list[str], list[str], set[str]]:
    """The headings, the signature blocks (block quotes) and every token type of a document."""
    tokens = _parser().parse(markdown)
    headings, quotes = [], []
    depth = 0
    for i, token in enumerate(tokens):
        if token.type == "heading_open":
            headings.append(f"{token.tag} {_text(tokens[i + 1])}")
        elif token.type == "blockquote_open":
            depth += 1
        elif token.type == "blockquote_close":
            depth -= 1
        elif token.type == "inline" and depth:
            quotes.append(_text(token))
    kinds = {t.type for t in tokens} | {c.type for t in tokens for c in t.children or []}
    return headings, quotes, kinds


@pytest.mark.sqlite_only("the escaping is in the renderer; the back end only stores the text")
def test_nc_text_cannot_fake_a_heading_or_a_signature(store: Store, app: CapaApplication) -> None:
    with store.acting(app, REPORTER):
        nc = app.nonconformities.raise_nc(title=HOSTILE_TITLE, description=FAKE, source="process",
                                          severity="minor").id
        app.nonconformities.contain_nc(nc, action=HOSTILE_ACTION, disposition="quarantine")
    with store.acting(app, QUALITY_ENGINEER):
        app.nonconformities.assess_nc(nc, impact=1, likelihood=1, capa_required=False,
                                      rationale="# Not a heading\n> not a quote")
        app.nonconformities.close_nc(nc)
    with reading(app):
        markdown = app.queries.render_report(nc, "md").decode()
    headings, quotes, kinds = _outline(markdown)
    assert headings == [f"h1 8D report {nc}: {HOSTILE_TITLE}", "h2 D1 Team",
                        "h2 D2 Problem description", "h2 D3 Containment", "h2 D4 Root cause",
                        "h2 D5 Chosen corrective actions", "h2 D6 Implementation",
                        "h2 D7 Prevention of recurrence", "h2 D8 Verification and closure"]
    assert len(quotes) == 1 and quotes[0].startswith(f"Signature - Closure of {nc} (no CA "
                                                     "required): "), quotes
    assert "html_block" not in kinds and "link" not in kinds and "em_open" not in kinds
    tokens = _parser().parse(markdown)
    inline_html = {c.content for t in tokens for c in t.children or [] if c.type == "html_inline"}
    assert inline_html <= {"<br>"}, "no HTML but the report's own line breaks in table cells"
    paragraphs = [_text(t) for t in tokens if t.type == "inline"]
    assert _normalised(FAKE) in "\n\n".join(paragraphs), "the text is shown as written"

    # The containment action is one cell of one row, pipes and all.
    cells = [_text(t) for i, t in enumerate(tokens) if t.type == "inline"
             and tokens[i - 1].type == "td_open"]
    assert _normalised(HOSTILE_ACTION) in cells
    with reading(app):
        tables = [body for section in app.queries.report(nc).sections
                  for kind, body in section.blocks if kind == "table"]
    rows = [t for t in tokens if t.type == "tr_open"]
    assert len(rows) == sum(1 + len(table_rows) for _, table_rows in tables), \
        "every table has exactly its own rows: no row forged from a cell's text"

    with reading(app):
        page = app.queries.render_report(nc, "html").decode()
    assert html.escape(HOSTILE_TITLE) in page and "<script>" not in page
    assert "<!--" not in page
