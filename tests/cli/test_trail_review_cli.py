"""`capa audit review` through the real entry point (SPEC §12, EU GMP Annex 11 §9): the listing by
exception, its output documents and files, the signed review and who may sign it, and refusals
that write nothing."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from capa.app.application import CapaApplication
from tests.support.cast import AUDITOR, QUALITY_ENGINEER, QUALITY_MANAGER, REPORTER
from tests.support.cli import run_main as run
from tests.support.stores import Store, app, cli_env, store

__all__ = ["app", "store"]

TODAY = dt.datetime.now(dt.UTC).date().isoformat()
HOSTILE = "Housing <script>alert(1)</script> | ## fake heading"


@pytest.fixture
def worked(store: Store, app: CapaApplication) -> Store:
    """A store with one NC of each kind of exception a review lists: a late entry (detected long
    before it was recorded), an amendment with a hostile title, a cancellation, a reopening."""
    with store.acting(app, REPORTER):
        ref = app.nonconformities.raise_nc(title="Cracked housing", description="At boss B2",
                                           source="process", severity="major",
                                           detected_on="2020-03-01").id
    with store.acting(app, QUALITY_ENGINEER):
        app.nonconformities.amend_nc(ref, field="title", value=HOSTILE, reason="Clearer | title")
        app.nonconformities.cancel_nc(ref, reason="Raised twice")
        app.nonconformities.reopen_nc(ref, reason="Not a duplicate after all")
    return store


def review(store: Store, user: str, monkeypatch: pytest.MonkeyPatch,
           capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    return run(["audit", "review", "--from", TODAY, "--to", TODAY, *args],
               cli_env(store, user), monkeypatch, capsys)


def test_the_listing_groups_the_exceptions_of_the_period(
        worked: Store, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    before = worked.event_count()
    code, out, err = review(worked, AUDITOR, monkeypatch, capsys)
    assert (code, err) == (0, "")
    assert out.startswith(f"Audit-trail review {TODAY} to {TODAY}: ")
    for heading in ("Amendments: 1", "Reopenings: 1", "Cancellations: 1", "Late entries: 1",
                    "Failed logins: 0", "Lockouts: 0", "Migrated records: 0"):
        assert f"\n{heading}\n" in out + "\n", heading
    assert "(reason: Raised twice)" in out
    assert "detected on 2020-03-01, recorded" in out
    assert "Jun Chen (jchen)" in out
    # Listing is a read: the auditor wrote nothing.
    assert worked.event_count() == before


def test_json_is_one_document_whose_digest_is_stable(
        worked: Store, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = review(worked, QUALITY_MANAGER, monkeypatch, capsys, "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["from"] == doc["to"] == TODAY
    assert doc["counts"]["amendments"] == 1 and doc["counts"]["reopenings"] == 1
    assert doc["total"] == sum(doc["counts"].values()) == len(doc["exceptions"])
    amended = next(e for e in doc["exceptions"] if e["category"] == "amendments")
    assert amended["reason"] == "Clearer | title" and amended["event"] == "Amended"
    assert amended["record"].startswith("NC-")
    again = json.loads(review(worked, AUDITOR, monkeypatch, capsys, "--json")[1])
    assert again["exceptions_sha256"] == doc["exceptions_sha256"]
    assert len(doc["exceptions_sha256"]) == 64


def test_markdown_out_file_escapes_hostile_text(
        worked: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "review.md"
    code, _, err = review(worked, AUDITOR, monkeypatch, capsys, "--out", str(out_file))
    assert code == 0, err
    text = out_file.read_text(encoding="utf-8")
    assert text.startswith(f"# Audit-trail review {TODAY} to {TODAY}")
    assert "<script>" not in text and "\\<script\\>" in text
    assert "\n## fake" not in text  # inside a table cell it starts no heading
    row = next(line for line in text.splitlines() if "script" in line)
    # The table keeps its seven columns: a `|` in user text is escaped.
    assert row.count("|") - row.count("\\|") == 8
    json_file = tmp_path / "review.json"
    assert review(worked, AUDITOR, monkeypatch, capsys, "--out", str(json_file))[0] == 0
    assert json.loads(json_file.read_text(encoding="utf-8"))["counts"]["amendments"] == 1


def test_a_signed_review_is_recorded_and_shows_in_history(
        worked: Store, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    listed = json.loads(review(worked, QUALITY_MANAGER, monkeypatch, capsys, "--json")[1])
    before = worked.event_count()
    code, out, err = review(worked, QUALITY_MANAGER, monkeypatch, capsys, "--json", "--sign")
    assert code == 0, err
    signed: dict[str, Any] = json.loads(out)
    assert (signed["id"], signed["status"], signed["version"]) == ("AUDIT-TRAIL", "active", 3)
    assert signed["exceptions_sha256"] == listed["exceptions_sha256"]
    assert signed["signature"]["meaning"] == "review"
    assert signed["signature"]["full_name"] == "Maria Hernandez"
    assert signed["signature"]["algorithm"] == "Ed25519"
    assert worked.event_count() == before + 3
    code, out, _ = run(["--json", "history", "AUDIT-TRAIL"], cli_env(worked, AUDITOR),
                       monkeypatch, capsys)
    assert code == 0
    entries = json.loads(out)
    assert [e["event_type"] for e in entries] == ["Started", "ReviewRecorded", "ReviewSigned"]
    recorded = next(c for c in entries[1]["changes"] if c["field"] == "reviews")["new"][0]
    assert recorded["counts"] == listed["counts"]
    assert recorded["exceptions_sha256"] == listed["exceptions_sha256"]
    assert (recorded["from"], recorded["to"]) == (TODAY, TODAY)
    assert entries[2]["signature"]["meaning"] == "review"
    assert entries[2]["signature"]["signed_version"] == 2
    # A second review of the same record follows the first.
    assert review(worked, QUALITY_ENGINEER, monkeypatch, capsys, "--sign")[0] == 0
    assert worked.event_count() == before + 5


def test_an_auditor_lists_but_may_not_sign(
        worked: Store, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    before = worked.event_count()
    code, out, err = review(worked, AUDITOR, monkeypatch, capsys, "--sign")
    assert code == 4 and out == ""
    assert "may not audit review --sign" in err
    code, _, _ = review(worked, REPORTER, monkeypatch, capsys)
    assert code == 4
    assert worked.event_count() == before


@pytest.mark.parametrize(("start", "end", "words"), [
    (TODAY, "2000-01-01", "is before --from"),
    ("2026-02-30", TODAY, "--from must be a date"),
    ("yesterday", TODAY, "--from must be a date"),
    (TODAY, "2026-13-01", "--to must be a date"),
])
def test_bad_periods_exit_2_and_write_nothing(
        worked: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], start: str, end: str, words: str) -> None:
    before = worked.event_count()
    out_file = tmp_path / "review.md"
    code, out, err = run(["audit", "review", "--from", start, "--to", end, "--sign", "--out",
                          str(out_file)], cli_env(worked, QUALITY_MANAGER), monkeypatch, capsys)
    assert code == 2 and out == ""
    assert words in err and len(err.strip().splitlines()) == 1
    assert worked.event_count() == before
    assert not out_file.exists()


def test_a_period_ending_in_the_future_is_listed_but_not_signed(
        worked: Store, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    later = (dt.date.fromisoformat(TODAY) + dt.timedelta(days=3)).isoformat()
    env = cli_env(worked, QUALITY_MANAGER)
    before = worked.event_count()
    assert run(["audit", "review", "--from", TODAY, "--to", later], env, monkeypatch,
               capsys)[0] == 0
    code, _, err = run(["audit", "review", "--from", TODAY, "--to", later, "--sign"], env,
                       monkeypatch, capsys)
    assert code == 2 and "in the future" in err
    assert worked.event_count() == before


def test_a_symbolic_link_out_is_refused(
        worked: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "elsewhere.txt"
    target.write_text("keep", encoding="utf-8")
    link = tmp_path / "review.md"
    link.symlink_to(target)
    before = worked.event_count()
    code, _, err = review(worked, QUALITY_MANAGER, monkeypatch, capsys, "--sign", "--out",
                          str(link))
    assert code == 2 and "symbolic link" in err
    assert target.read_text(encoding="utf-8") == "keep"
    assert worked.event_count() == before


def test_the_dashboard_says_when_the_trail_was_last_reviewed(
        worked: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "dashboard.html"
    env = cli_env(worked, AUDITOR)
    assert run(["dashboard", "--out", str(page)], env, monkeypatch, capsys)[0] == 0
    assert "Audit trail last reviewed: never." in page.read_text(encoding="utf-8")
    assert review(worked, QUALITY_MANAGER, monkeypatch, capsys, "--sign")[0] == 0
    assert run(["dashboard", "--out", str(page)], env, monkeypatch, capsys)[0] == 0
    assert (f"Audit trail last reviewed: {TODAY} by Maria Hernandez (period {TODAY} to {TODAY}"
            in page.read_text(encoding="utf-8"))
