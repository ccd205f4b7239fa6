"""The 8D report as one self-contained HTML page."""

from __future__ import annotations

import html

from capa.reports.dashboard_html import svg_bars
from capa.reports.eightd import Report

__all__ = ["to_html"]


_CSS = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;color:#222}
h1{font-size:1.5rem}h2{font-size:1.15rem;border-bottom:1px solid #ccc;margin-top:1.6rem}
table{border-collapse:collapse;margin:.5rem 0;width:100%}td,th{border:1px solid #ccc;
padding:.25rem .4rem;text-align:left;vertical-align:top;white-space:pre-wrap}
th{background:#f3f3f3}figure{margin:.5rem 0;max-width:48rem}svg{width:100%;height:auto}
svg .grid{stroke:#e2e2e2}svg .tick,svg .label{font-size:11px;fill:#444}
.sig{border-left:4px solid #2a6;padding:.4rem .8rem;background:#f4fbf6}
"""


def to_html(report: Report) -> str:
    e = html.escape
    out = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
           f"<title>{e(report.heading)}</title><style>{_CSS}</style></head><body>",
           f"<h1>{e(report.heading)}: {e(report.title)}</h1>",
           f"<p>{e(report.summary)}</p>" if report.summary is not None else
           f"<p>Status <b>{e(report.status)}</b>, version {report.version}. "
           f"{e(report.organisation)} Generated {e(report.generated_at)}.</p>"]
    for section in report.sections:
        out.append(f"<h2 id=\"{section.code.lower()}\">{section.code} {e(section.title)}</h2>")
        for kind, body in section.blocks:
            if kind == "p":
                out.append(f"<p>{e(body)}</p>")
            elif kind == "table":
                headers, rows = body
                out.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in headers)
                           + "</tr>")
                out += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>"
                        for row in rows]
                out.append("</table>")
            elif kind == "chart":
                title, labels, counts, limits = body
                out.append(f"<figure>{svg_bars(title, labels, [('count', counts)], limits=limits)}"
                           "</figure>")
            else:
                label, sig = body
                out.append(f"<div class=\"sig\"><b>Signature - {e(label)}</b><br>"
                           f"Printed name: {e(sig['full_name'])} ({e(sig['user_id'])})<br>"
                           f"Date and time (UTC): {e(sig['signed_at'])}<br>"
                           f"Meaning: {e(sig['meaning'])}<br>"
                           f"Bound to version {sig['signed_version']}, content SHA-256 "
                           f"<code>{e(sig['content_sha256'])}</code></div>")
    out.append("</body></html>")
    return "\n".join(out)
