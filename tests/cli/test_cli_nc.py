"""`capa nc …` through the command line: results, shapes, and every refusal writing nothing."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest

#: Each test runs a third time with its commands sent through `capa serve` (SPEC §11): the
#: same output, JSON and exit codes from the client as from the store.
pytestmark = pytest.mark.client_mode

if TYPE_CHECKING:
    from conftest import Capa

ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")

NC_FIELDS = {"id", "status", "version", "title", "description", "source", "severity",
             "product", "lot", "external_ref", "detected_on", "reported_by", "containment",
             "assessment", "linked_cas"}
HISTORY_FIELDS = {"position", "version", "time", "actor", "actor_name", "event_type",
                  "changes", "reason", "signature"}


def timestamps(value: Any) -> list[str]:
    """Every ISO datetime string anywhere in a JSON document."""
    if isinstance(value, dict):
        return [t for v in value.values() for t in timestamps(v)]
    if isinstance(value, list):
        return [t for v in value for t in timestamps(v)]
    return [value] if isinstance(value, str) and ISO_DATETIME.match(value) else []


def assert_utc(document: Any) -> None:
    found = timestamps(document)
    assert found, "expected timestamps in the document"
    for moment in found:
        assert moment.endswith("Z"), moment


def test_nc_lifecycle_writes_report_id_status_and_version(capa: Capa) -> None:
    year = capa.year
    raised = capa.write("nc", "raise", "--title", "Seal strength low", "--description",
                        "12 of 50 below 8 N", "--source", "process", "--severity", "major",
                        "--product", "Pouch P-10", "--lot", "L2407", "--external-ref",
                        "COMP-7", "--detected-on", capa.day(-3), user=capa.reporter)
    nc = raised["id"]
    assert raised == {"id": f"NC-{year}-0001", "status": "open", "version": 1, "similar": []}
    assert capa.write("nc", "contain", nc, "--action", "Line 3 stopped", "--disposition",
                      "quarantine", user=capa.reporter) == {"id": nc, "status": "contained",
                                                            "version": 2}
    assert capa.write("nc", "amend", nc, "--field", "severity", "--value", "critical",
                      "--reason", "Patient contact confirmed") == {
        "id": nc, "status": "contained", "version": 3}
    assert capa.write("nc", "assess", nc, "--impact", "5", "--likelihood", "4",
                      "--capa-required") == {"id": nc, "status": "assessed", "version": 4}
    ca = capa.ca()
    linked = capa.write("nc", "link", nc.lower(), ca)
    assert (linked["id"], linked["status"], linked["version"]) == (nc, "linked", 5)
    assert linked["ca"] == ca

    shown = capa.run("--json", "nc", "show", nc)
    assert shown.code == 0 and shown.stderr == ""
    record = shown.json()
    assert set(record) >= NC_FIELDS
    assert (record["status"], record["version"], record["severity"]) == ("linked", 5, "critical")
    assert (record["product"], record["lot"], record["external_ref"]) == (
        "Pouch P-10", "L2407", "COMP-7")
    assert record["detected_on"] == capa.day(-3)
    assert record["reported_by"] == capa.reporter
    assert record["containment"][0]["disposition"] == "quarantine"
    assert record["assessment"]["risk"] == 20
    assert record["assessment"]["risk_level"] == "critical"
    assert record["linked_cas"] == [ca]
    assert_utc(record)


def test_containment_records_where_it_was_done(capa: Capa) -> None:
    nc = capa.write("nc", "raise", "--title", "Cracked housing", "--description", "Boss cracked",
                    "--source", "customer-complaint", "--severity", "major",
                    user=capa.reporter)["id"]
    capa.write("nc", "contain", nc, "--action", "Stock on hand sorted", "--disposition",
               "quarantine", "--location", "Finished goods warehouse, bay 4")
    capa.write("nc", "contain", nc, "--action", "Customer informed")
    entries = capa.run("--json", "nc", "show", nc).json()["containment"]
    assert [(e["action"], e["location"]) for e in entries] == [
        ("Stock on hand sorted", "Finished goods warehouse, bay 4"), ("Customer informed", None)]
    history = capa.run("--json", "history", nc).json()
    assert "Finished goods warehouse, bay 4" in str(history[1]["changes"])


def test_nc_without_ca_closes_reopens_and_cancels(capa: Capa) -> None:
    nc = capa.assessed_nc(capa_required=False)
    assert capa.write("nc", "close", nc)["status"] == "closed"
    closure = capa.run("--json", "nc", "show", nc).json()["closure"]
    assert closure["signature"]["user_id"] == capa.quality_manager
    assert closure["signature"]["full_name"] == "Maria Hernandez"
    assert closure["signature"]["meaning"] == "approval"
    assert re.fullmatch(r"[0-9a-f]{64}", closure["signature"]["content_sha256"])
    reopened = capa.write("nc", "reopen", nc, "--reason", "Recurred in lot L2411")
    assert (reopened["status"], reopened["version"]) == ("open", 4)
    cancelled = capa.write("nc", "cancel", nc, "--reason", "Duplicate of NC-2026-0009")
    assert (cancelled["status"], cancelled["version"]) == ("cancelled", 5)


def test_nc_human_output(capa: Capa) -> None:
    raised = capa.run("nc", "raise", "--title", "Cracked housing", "--description", "B2",
                      "--source", "process", "--severity", "minor", user=capa.reporter)
    assert raised.code == 0
    nc = f"NC-{capa.year}-0001"
    assert raised.stdout.strip() == f"{nc}: open (version 1)"
    shown = capa.run("nc", "show", nc)
    assert shown.code == 0
    assert "title: Cracked housing" in shown.stdout
    assert "status: open" in shown.stdout
    listed = capa.run("nc", "list")
    header, *rows = listed.stdout.strip().splitlines()
    assert header.split()[:2] == ["ID", "STATUS"]
    assert len(rows) == 1 and rows[0].startswith(nc)


def test_nc_list_filters_and_shape(capa: Capa) -> None:
    first = capa.nc("First")
    second = capa.assessed_nc("Second")
    capa.write("nc", "raise", "--title", "Third", "--description", "d", "--source",
               "supplier", "--severity", "critical", user=capa.reporter)
    everything = capa.run("--json", "nc", "list")
    assert everything.code == 0
    rows = everything.json()
    assert isinstance(rows, list) and len(rows) == 3
    for row in rows:
        assert {"id", "status", "title"} <= set(row)
    assert {r["id"]: r["status"] for r in rows}[second] == "assessed"

    def ids(*filters: str) -> set[str]:
        outcome = capa.run("--json", "nc", "list", *filters)
        assert outcome.code == 0, outcome.stderr
        return {row["id"] for row in outcome.json()}

    assert ids("--status", "open") == {first, f"NC-{capa.year}-0003"}
    assert ids("--status", "assessed", "--status", "open") == {r["id"] for r in rows}
    assert ids("--severity", "critical") == {f"NC-{capa.year}-0003"}
    assert ids("--source", "supplier", "--status", "open") == {f"NC-{capa.year}-0003"}
    assert ids("--status", "closed") == set()


def test_nc_show_at_a_version_or_time(capa: Capa) -> None:
    nc = capa.nc()
    capa.write("nc", "contain", nc, "--action", "Held", user=capa.reporter)
    capa.write("nc", "amend", nc, "--field", "title", "--value", "Cracked housing B2",
               "--reason", "More precise")
    trail = capa.run("--json", "history", nc).json()
    first = capa.run("--json", "nc", "show", nc, "--version", "1").json()
    assert (first["version"], first["status"], first["containment"]) == (1, "open", [])
    assert capa.run("--json", "nc", "show", nc, "--as-of", trail[1]["time"]).json()[
        "version"] == 2
    at_day = capa.run("--json", "nc", "show", nc, "--as-of", capa.day(0)).json()
    assert (at_day["version"], at_day["title"]) == (3, "Cracked housing B2")
    capa.refused("nc", "show", nc, "--as-of", capa.day(-1), code=3)
    capa.refused("nc", "show", nc, "--version", "4", code=3)
    capa.refused("nc", "show", nc, "--version", "0", code=2)
    capa.refused("nc", "show", nc, "--as-of", "last tuesday", code=2)
    capa.refused("nc", "show", nc, "--as-of", "2026-02-30", code=2)


def test_history_lists_every_event(capa: Capa) -> None:
    nc = capa.nc("Cracked housng")
    capa.write("nc", "amend", nc, "--field", "title", "--value", "Cracked housing",
               "--reason", "Typo")
    capa.write("nc", "assess", nc, "--impact", "1", "--likelihood", "1", "--no-capa-required",
               "--rationale", "Cosmetic")
    capa.write("nc", "close", nc)
    outcome = capa.run("--json", "history", nc)
    assert outcome.code == 0 and outcome.stderr == ""
    trail = outcome.json()
    assert [e["event_type"] for e in trail] == ["Raised", "Amended", "Assessed", "Closed"]
    for entry in trail:
        assert set(entry) >= HISTORY_FIELDS
    assert [e["version"] for e in trail] == [1, 2, 3, 4]
    positions = [e["position"] for e in trail]
    assert positions == sorted(set(positions))
    assert [e["actor"] for e in trail] == [capa.reporter] + [capa.quality_manager] * 3
    assert trail[0]["actor_name"] == "Tolu Okafor"
    assert trail[1]["reason"] == "Typo"
    assert {"field": "title", "old": "Cracked housng", "new": "Cracked housing"} in trail[1][
        "changes"]
    assert trail[3]["signature"]["meaning"] == "approval"
    assert trail[3]["signature"]["full_name"] == "Maria Hernandez"
    assert_utc(trail)
    text = capa.run("history", nc).stdout
    assert "Amended" in text and "reason: Typo" in text and "Maria Hernandez" in text


# -- refusals: exit code, and not one event written ------------------------------------------


def test_rule_refusals_exit_1_naming_the_rule(capa: Capa) -> None:
    nc = capa.nc()
    capa.refused("nc", "assess", nc, "--impact", "2", "--likelihood", "1",
                 "--no-capa-required", code=1, rule="R1")
    capa.refused("nc", "assess", nc, "--impact", "2", "--likelihood", "1",
                 "--no-capa-required", "--rationale", "  ", code=1, rule="R1")
    capa.refused("nc", "cancel", nc, "--reason", "", code=1, rule="R6")
    capa.refused("nc", "amend", nc, "--field", "lot", "--value", "L1", "--reason", " ",
                 code=1, rule="R6")
    capa.refused("nc", "reopen", nc, "--reason", "again", code=1, rule="R7")
    capa.refused("nc", "close", nc, code=1, rule="R7")
    needing = capa.assessed_nc("Needs a CA")
    capa.refused("nc", "close", needing, code=1, rule="R4")
    capa.refused("nc", "assess", needing, "--impact", "2", "--likelihood", "2",
                 "--capa-required", code=1, rule="R7")
    capa.refused("nc", "contain", needing, "--action", "late", code=1, rule="R7")
    ca = capa.ca(needing)
    capa.refused("nc", "close", needing, code=1, rule="R4")
    no_ca = capa.assessed_nc("No CA", capa_required=False)
    capa.refused("nc", "link", no_ca, ca, code=1, rule="R7")
    other = capa.assessed_nc("Another")
    capa.write("ca", "cancel", ca, "--reason", "Merged")
    capa.refused("nc", "link", other, ca, code=1, rule="R7")
    capa.write("nc", "close", no_ca)
    capa.refused("nc", "amend", no_ca, "--field", "lot", "--value", "L1", "--reason", "late",
                 code=1, rule="R7")
    capa.refused("nc", "cancel", no_ca, "--reason", "late", code=1, rule="R7")


RAISE = ("nc", "raise", "--title", "t", "--description", "d", "--source", "process",
         "--severity", "minor")


@pytest.mark.parametrize(
    "args",
    [
        ("nc", "raise", "--title", "t", "--description", "d", "--source", "gossip",
         "--severity", "minor"),
        ("nc", "raise", "--title", "t", "--description", "d", "--source", "process",
         "--severity", "huge"),
        ("nc", "raise", "--title", "", "--description", "d", "--source", "process",
         "--severity", "minor"),
        ("nc", "raise", "--description", "d", "--source", "process", "--severity", "minor"),
        (*RAISE, "--detected-on", "2026-02-30"),
        (*RAISE, "--detected-on", "01/02/2026"),
        (*RAISE, "--detected-on", "2999-01-01"),
    ],
)
def test_invalid_raise_exits_2(capa: Capa, args: tuple[str, ...]) -> None:
    capa.refused(*args, code=2, user=capa.reporter)


@pytest.mark.parametrize(
    "options",
    [
        ("--impact", "0", "--likelihood", "3", "--capa-required"),
        ("--impact", "6", "--likelihood", "3", "--capa-required"),
        ("--impact", "3", "--likelihood", "many", "--capa-required"),
        ("--impact", "3", "--likelihood", "3"),
    ],
)
def test_invalid_assessment_exits_2(capa: Capa, options: tuple[str, ...]) -> None:
    nc = capa.nc()
    capa.refused("nc", "assess", nc, *options, code=2)


def test_invalid_values_exit_2(capa: Capa) -> None:
    nc = capa.nc()
    capa.refused("nc", "contain", nc, "--action", "Held", "--disposition", "burn", code=2)
    capa.refused("nc", "contain", nc, "--action", "  ", code=2)
    capa.refused("nc", "amend", nc, "--field", "status", "--value", "closed", "--reason", "x",
                 code=2)
    capa.refused("nc", "amend", nc, "--field", "severity", "--value", "major", "--reason", "x",
                 code=2)  # already major: nothing to correct
    capa.refused("nc", "amend", nc, "--field", "severity", "--value", "huge", "--reason", "x",
                 code=2)
    capa.refused("nc", "show", "NC-26-1", code=2)
    capa.refused("nc", "show", f"CA-{capa.year}-0001", code=2)
    capa.refused("nc", "list", "--status", "resolved", code=2)


def test_missing_records_exit_3(capa: Capa) -> None:
    missing = f"NC-{capa.year}-0042"
    capa.refused("nc", "show", missing, code=3)
    capa.refused("history", missing, code=3)
    capa.refused("nc", "contain", missing, "--action", "Held", code=3, user=capa.reporter)
    capa.refused("nc", "cancel", missing, "--reason", "x", code=3)
    nc = capa.assessed_nc()
    capa.refused("nc", "link", nc, f"CA-{capa.year}-0042", code=3)


def test_a_ca_id_given_as_an_nc_is_invalid_input(capa: Capa) -> None:
    ca = capa.ca()
    assert capa.run("--json", "ca", "show", ca).code == 0
    error = capa.refused("nc", "contain", ca, "--action", "Held", code=2, user=capa.reporter)
    assert "not found" not in error["message"]
