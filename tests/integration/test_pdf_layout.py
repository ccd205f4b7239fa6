"""The 8D PDF read back as a viewer lays it out (pdfplumber: every word and its position): every
word inside the page's text area, nothing cut or overlapping, every signature manifestation
printed whole in one block on one page, for long names, long root causes, several
effectiveness iterations, unbroken part numbers and URLs, non-Latin scripts and page breaks."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Any

import pytest

from capa.app.application import CapaApplication
from capa.reports.eightd import Report, Section, manifestation
from capa.reports.pdf import to_pdf
from tests.support.cast import (
    OWNER,
    PASSWORD,
    QUALITY_ENGINEER,
    QUALITY_MANAGER,
    REPORTER,
    TECHNICIAN,
)
from tests.support.stores import Store, app, has_accounts, store

pytest.importorskip("pdfplumber", reason="pdfplumber is in the test extra")
from tests.support.pdflayout import (  # noqa: E402 - only once pdfplumber is known present
    assert_inside_text_area,
    pages,
    signature_blocks,
)
from tests.support.reading import reading

__all__ = ["app", "store"]

PART = "PN-" + "7F3A9C2E" * 14  # one unbroken "word" wider than the page
URL = "https://supplier.example.com/quality/8d/attachments/" + "x" * 90 + "?lot=A17&rev=D"
LONG_CAUSE = (
    "Gate insert worn beyond its 0.05 mm limit because the preventive maintenance interval was "
    "set for the old resin; the new glass-filled grade abrades the insert three times faster, "
    "so the wall at boss B2 thinned to 0.6 mm and cracked under assembly torque. ") * 6
NAMES = {
    "Maria-Concepción de los Ángeles Hernández-Villanueva y Ruiz de Alarcón": "mhernandez",
    "Łukasz Wróblewski-Szczepański": "lwroblewski",
    "Νικόλαος Παπαδόπουλος": "npapadopoulos",
    "Александра Вячеславовна Рождественская": "arozhdestvenskaya",
    "Nguyễn Thị Thu Hương": "nthu",
    "山田太郎": "yamada",
}


def _sig(name: str, user: str, meaning: str, n: int) -> dict[str, Any]:
    return {"full_name": name, "user_id": user, "meaning": meaning,
            "signed_at": f"2026-11-{10 + n:02d}T08:{n:02d}:17Z", "signed_version": 10 + n,
            "content_sha256": f"{n:x}" * 64, "signature": "sig", "algorithm": "Ed25519",
            "key_id": f"key-{user}-{n}"}


def hostile_report(iterations: int = 4) -> Report:
    """A report built to hurt the layout: every kind of text that has broken reports before."""
    people = list(NAMES.items())
    d1 = Section("D1", "Team")
    d1.table(["user", "name", "part"], [[u, n, "reported the nonconformity, assessed risk, "
                                         "CA owner, action 1, action 2, verified effectiveness"]
                                        for n, u in people])
    d2 = Section("D2", "Problem description")
    d2.text(f"NC-2026-0001 Cracked housing on {PART} (major, customer-complaint, detected "
            f"2026-10-01): see {URL} for the complaint file. " + LONG_CAUSE[:400])
    d2.table(["field", "value"], [["product", PART], ["lot", "L" * 120],
                                  ["external reference", URL]])
    d3 = Section("D3", "Containment")
    d3.table(["NC", "action", "disposition", "where", "by", "at (UTC)"],
             [["NC-2026-0001", "Quarantine every lot of " + PART, "quarantine", URL,
               "arozhdestvenskaya", "2026-10-02T09:00:00.123456Z"]])
    d4 = Section("D4", "Root cause")
    d5 = Section("D5", "Chosen corrective actions")
    d5.table(["action", "type", "text", "assignee", "due", "iteration"],
             [[f"A{i}", "corrective", f"Replace insert {PART} and requalify; " + LONG_CAUSE[:300],
               "lwroblewski", "2026-12-20", str(i)] for i in range(1, iterations + 1)])
    d6 = Section("D6", "Implementation")
    d6.table(["action", "state", "completed by", "at (UTC)", "note", "evidence"],
             [[f"A{i}", "done", "lwroblewski", f"2026-11-0{i}T10:00:00.65432{i}Z", URL,
               f"{PART}.pdf (sha256 0123456789ab)"] for i in range(1, iterations + 1)])
    d7 = Section("D7", "Prevention of recurrence")
    d7.text("No preventive action recorded.")
    d8 = Section("D8", "Verification and closure")
    for i in range(1, iterations + 1):
        name, user = people[i % len(people)]
        d4.text(f"Iteration {i}, 5-whys, category machine{' (current)' if i == iterations else ''}"
                f": {LONG_CAUSE} - by {user} at 2026-10-{i:02d}T10:00:00Z")
        d4.table(["why", "answer"], [[str(k), f"Because {PART} wore; " + LONG_CAUSE[:200]]
                                     for k in range(1, 4)])
        d5.signature(f"Plan approval, iteration {i}", _sig(name, user, "approval", i))
        d8.text(f"Iteration {i}: {'effective' if i == iterations else 'NOT effective'}. "
                + LONG_CAUSE[:250])
        d8.signature(f"Effectiveness verification, iteration {i}",
                     _sig(name, user, "verification", i + iterations))
    longest = max(NAMES, key=len)
    d8.signature("Closure of CA-2026-0001", _sig(longest, NAMES[longest], "approval", 15))
    return Report(record="CA-2026-0001", title="Housing cracks at boss B2 on " + PART,
                  status="closed", version=42, organisation="Northwind Medical Devices GmbH & Co",
                  generated_at="2026-12-01T23:00:00Z", sections=[d1, d2, d3, d4, d5, d6, d7, d8])


TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def test_ids_times_and_user_names_in_tables_are_never_broken() -> None:
    """A table column is made wide enough for the short words it holds: an NC number, a UTC
    time to the microsecond or a user name split over two lines reads as two values."""
    report = hostile_report()
    words = {w["text"] for page_words, _ in pages(to_pdf(report)) for w in page_words}
    whole = {c for s in report.sections for kind, body in s.blocks if kind == "table"
             for row in body[1] for c in row
             if TIME.fullmatch(c) or re.fullmatch(r"(NC|CA)-\d{4}-\d{4}|[a-z]{2,20}", c)}
    assert any(TIME.fullmatch(c) for c in whole)
    assert not whole - words, sorted(whole - words)


def test_control_characters_are_shown_not_swallowed(caplog: pytest.LogCaptureFixture) -> None:
    """A terminal escape or a bell pasted into a record has no glyph: it is printed as its code
    point, as a missing glyph is, and the rest of the line stays in place."""
    section = Section("D2", "Problem description")
    section.text("Red \x1b[31mALERT\x1b[0m bell\x07 nul\x00 tab\tend\r\nnext line")
    section.table(["field", "value"], [["lot", "L\x1b[2J1\x9b"]])
    report = Report(record="NC-2026-0001", title="Title\x1b]0;owned\x07", status="open",
                    version=1, organisation="", generated_at="2026-12-01T23:00:00Z",
                    sections=[section])
    with caplog.at_level("WARNING"):
        content = to_pdf(report)
    assert not [r for r in caplog.records if "missing" in r.getMessage()], caplog.text
    text = "\n".join(t for _, t in pages(content))
    words = " ".join(text.split())
    assert "Red <U+001B>[31mALERT<U+001B>[0m bell<U+0007> nul<U+0000> tab end" in words
    assert "next line" in text.splitlines(), "a line end stays a line end"
    assert "L<U+001B>[2J1<U+009B>" in words and "Title<U+001B>]0;owned<U+0007>" in words
    assert not any(unicodedata.category(c) == "Cc" for c in text.replace("\n", ""))
    assert_inside_text_area(content)


def test_a_table_row_longer_than_a_page_is_printed_whole() -> None:
    """A why-answer or a note longer than a page cannot sit in one table row: it is printed
    in full, inside the page, over as many pages as it needs."""
    section = Section("D4", "Root cause")
    answer = " ".join(f"reason{k}" for k in range(2500))
    section.table(["why", "answer"], [["1", "Short first answer"], ["2", answer]])
    report = Report(record="CA-2026-0001", title="Long", status="open", version=1,
                    organisation="", generated_at="2026-12-01T23:00:00Z", sections=[section])
    content = to_pdf(report)
    assert_inside_text_area(content)
    printed = _flat("".join(t for _, t in pages(content)))
    assert _flat(answer) in printed and "Shortfirstanswer" in printed
    assert len(pages(content)) >= 3


def _flat(text: str) -> str:
    return "".join(text.split())


def test_every_word_of_a_hostile_report_lies_inside_the_page() -> None:
    report = hostile_report()
    content = to_pdf(report)
    assert len(pages(content)) >= 3, "the report is long enough to break pages"
    assert_inside_text_area(content)


def test_no_text_is_lost() -> None:
    """Everything the report says is on the pages, in order (wrapping may split an unbroken
    word, so spaces are not compared)."""
    report = hostile_report()
    printed = _flat("".join(text for _, text in pages(to_pdf(report))))
    expected = [_flat(f"8D report {report.record}: {report.title}")]
    for section in report.sections:
        expected.append(_flat(f"{section.code} {section.title}"))
        for kind, body in section.blocks:
            if kind == "p":
                expected.append(_flat(body))
            elif kind == "table":
                headers, rows = body
                expected += [_flat(c) for row in rows for c in row if c.strip()]
    position = 0
    for piece in expected:
        # CJK ideographs are printed as their code points; compare what the font can show.
        piece = re.sub(r"[\u4e00-\u9fff]", lambda m: f"<U+{ord(m.group()):04X}>", piece)
        found = printed.find(piece, position)
        assert found >= 0, f"not printed (or out of order): {piece[:80]!r}"
        position = found + len(piece)


def test_every_signature_manifestation_is_printed_whole() -> None:
    report = hostile_report()
    signatures = [body for s in report.sections for kind, body in s.blocks if kind == "sig"]
    blocks = signature_blocks(to_pdf(report))
    assert [label for _, label, _ in blocks] == [label for label, _ in signatures]
    for (page, label, text), (_, sig) in zip(blocks, signatures, strict=True):
        words = text.split()
        # Each word whole, in order: a name, time or meaning split mid-word (or cut at the
        # margin) reads as something else.
        expected = manifestation(sig).replace("山田太郎",
                                              "<U+5C71><U+7530><U+592A><U+90CE>").split()
        assert words[:len(expected)] == expected, (page, label)
        for line in text.splitlines():
            assert line.strip() in manifestation(sig) or "<U+" in line, (page, label, line)
        assert f"signed {sig['signed_at']} (UTC)," in " ".join(words), (page, label)
        assert f"meaning: {sig['meaning']};" in " ".join(words), (page, label)


@pytest.mark.parametrize("iterations", [1, 2, 3, 5, 8])
def test_layout_holds_whatever_falls_at_a_page_break(iterations: int) -> None:
    """Different lengths move every block across the page breaks: a signature block or a
    heading is never split from its body or left alone at the bottom of a page."""
    content = to_pdf(hostile_report(iterations))
    assert_inside_text_area(content)
    for number, (_, text) in enumerate(pages(content), 1):
        last = [line for line in text.splitlines() if line.strip()][-1]
        assert not re.match(r"(D\d [A-Z]|Signature - )", last), \
            f"page {number} ends with a stranded heading: {last!r}"
    assert len(signature_blocks(content)) == 2 * iterations + 1


def _day(n: int) -> str:
    return (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=n)).isoformat()


@pytest.mark.sqlite_only("the layout does not depend on the back end; the other tests here "
                         "cover the renderer alone")
@pytest.mark.skipif(not has_accounts(), reason="printed names come from user accounts")
def test_report_of_a_real_ca_with_several_iterations(store: Store, app: CapaApplication) -> None:
    with store.acting(app, QUALITY_MANAGER):
        app.identity.add_user("arozhdestvenskaya",
                              full_name="Александра Вячеславовна Рождественская-Лебедева",
                              roles=["quality"], password=PASSWORD)
    with store.acting(app, REPORTER):
        nc = app.nonconformities.raise_nc(title="Cracked housing " + PART,
                                          description=LONG_CAUSE + URL,
                                          source="customer-complaint", severity="major",
                                          product=PART,
                                          detected_on=_day(-20)).id
    with store.acting(app, QUALITY_ENGINEER):
        app.nonconformities.assess_nc(nc, impact=4, likelihood=3, capa_required=True)
        ca = app.corrective_actions.open_ca(title="Housing cracks", problem=LONG_CAUSE, owner=OWNER,
                                            ncs=[nc]).id
    for iteration in (1, 2, 3):
        with store.acting(app, OWNER):
            app.corrective_actions.investigate_ca(ca, method="5-whys",
                                                  root_cause=f"{iteration}: {LONG_CAUSE}",
                                                  category="machine", whys=[LONG_CAUSE[:300], PART])
            action = app.corrective_actions.plan_ca(ca, action=f"Replace insert {PART}",
                                                    assignee=TECHNICIAN,
                                                    due=_day(5), action_type="corrective")
            # The planned check and the impact assessment (SPEC §12) print in D8's tables.
            app.corrective_actions.plan_check(ca, criteria=f"No cracks on {PART}; "
                                              + LONG_CAUSE[:200], method=URL, due=_day(30))
            app.corrective_actions.assess_impact(ca, statement=LONG_CAUSE[:500],
                                                 risk_file=PART, changes=[URL, "DCO-2291"],
                                                 training=["TR-" + "9" * 60])
        with store.acting(app, QUALITY_MANAGER):
            app.corrective_actions.approve_ca(ca)
        with store.acting(app, TECHNICIAN):
            app.corrective_actions.complete_action(ca, f"A{iteration}", note=URL)
        with store.acting(app, "arozhdestvenskaya"):
            if iteration == 3:
                app.corrective_actions.verify_ca(ca, inconclusive=True, note=LONG_CAUSE[:300],
                                                 due=_day(60), reason=LONG_CAUSE[:200])
            app.corrective_actions.verify_ca(ca, effective=iteration == 3, note=LONG_CAUSE[:400])
        assert action
    with store.acting(app, QUALITY_MANAGER):
        app.corrective_actions.close_ca(ca)
    with reading(app):
        content = app.queries.render_report(ca, "pdf")
    assert_inside_text_area(content)
    words = {w["text"] for page_words, _ in pages(content) for w in page_words}
    with reading(app):
        completed = [i["completed_at"]
                     for i in app.records.show(ca).model_dump(mode="json")["items"]]
    assert completed and set(completed) <= words, "each completion time printed whole"
    blocks = signature_blocks(content)
    assert len(blocks) == 3 + 1 + 3 + 1, [label for _, label, _ in blocks]
    assert "Inconclusive effectiveness check, iteration 3" in [label for _, label, _ in blocks]
    for _, label, text in blocks:
        words = " ".join(text.split())
        assert re.match(r"\S.* \([a-z]+\), signed \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z "
                        r"\(UTC\), meaning: (approval|verification);", words), (label, words)
    assert "Рождественская-Лебедева (arozhdestvenskaya), signed" in " ".join(
        " ".join(t.split()) for _, _, t in blocks)
