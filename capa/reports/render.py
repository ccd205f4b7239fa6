"""An 8D report in the format asked for: Markdown, HTML or PDF."""

from __future__ import annotations

from capa.domain.errors import InvalidInput
from capa.reports.eightd import Report
from capa.reports.htmlpage import to_html
from capa.reports.markdown import to_markdown
from capa.reports.pdf import to_pdf

__all__ = ["render"]


def render(report: Report, fmt: str) -> bytes:
    if fmt == "md":
        return to_markdown(report).encode("utf-8")
    if fmt == "html":
        return to_html(report).encode("utf-8")
    if fmt == "pdf":
        return to_pdf(report)
    raise InvalidInput(f"format must be one of: md, html, pdf (got {fmt!r})")
