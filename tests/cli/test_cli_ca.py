"""`capa ca …` through the command line: results, shapes, and every refusal writing nothing."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

#: Each test runs a third time with its commands sent through `capa serve` (SPEC §11): the
#: same output, JSON and exit codes from the client as from the store.
pytestmark = pytest.mark.client_mode

if TYPE_CHECKING:
    from conftest import Capa

CA_FIELDS = {"id", "status", "version", "title", "problem", "owner", "linked_ncs", "analyses",
             "root_cause", "items", "approvals", "verifications", "iteration"}
ITEM_FIELDS = {"number", "text", "assignee", "due", "type", "state", "note", "evidence",
               "extensions"}


def test_ca_lifecycle_writes_report_id_status_and_version(capa: Capa, tmp_path: Path) -> None:
    first, second = capa.assessed_nc("First"), capa.assessed_nc("Second")
    opened = capa.write("ca", "open", "--title", "Housing cracks", "--problem", "Boss B2",
                        "--owner", capa.owner, "--nc", first, "--nc", second,
                        user=capa.quality_engineer)
    ca = opened["id"]
    assert opened == {"id": f"CA-{capa.year}-0001", "status": "open", "version": 1,
                      "linked_ncs": [first, second]}
    steps = [
        (capa.owner, ("ca", "investigate", ca, "--method", "5-whys", "--root-cause",
                      "Worn gate insert", "--category", "machine", "--why", "Boss cracks",
                      "--why", "Wall too thin"), "investigated"),
        (capa.owner, ("ca", "plan", ca, "--action", "Sort lot", "--assignee", capa.technician,
                      "--due", capa.day(5), "--type", "correction"), "planned"),
        (capa.owner, ("ca", "plan", ca, "--action", "Replace insert", "--assignee", capa.owner,
                      "--due", capa.day(9), "--type", "corrective"), "planned"),
        (capa.quality_manager, ("ca", "approve", ca), "approved"),
        (capa.quality_manager, ("ca", "extend", ca, "A2", "--due", capa.day(12), "--reason",
                                "Tooling lead time"), "approved"),
        (capa.technician, ("ca", "complete", ca, "A1", "--note", "Sorted"), "approved"),
        (capa.owner, ("ca", "complete", ca, "a2", "--note", "Replaced"), "implemented"),
        (capa.verifier, ("ca", "verify", ca, "--effective", "--note", "3 lots clean"),
         "verified"),
        (capa.quality_manager, ("ca", "close", ca), "closed"),
    ]
    results = []
    for version, (user, args, status) in enumerate(steps, start=2):
        result = capa.write(*args, user=user)
        assert (result["id"], result["status"], result["version"]) == (ca, status, version)
        results.append(result)
    assert results[1]["action"] == "A1" and results[2]["action"] == "A2"
    assert results[6]["action"] == "A2"
    assert results[7]["iteration"] == 1
    assert results[8]["closed_ncs"] == [first, second]
    for nc in (first, second):
        shown = capa.run("--json", "nc", "show", nc).json()
        assert shown["status"] == "closed"
        assert shown["closure"]["with_ca"] == ca

    record = capa.run("--json", "ca", "show", ca).json()
    assert set(record) >= CA_FIELDS
    assert (record["status"], record["owner"], record["iteration"]) == ("closed", capa.owner, 1)
    assert record["root_cause"]["whys"] == ["Boss cracks", "Wall too thin"]
    assert set(record["items"][0]) >= ITEM_FIELDS
    assert [i["completed_by"] for i in record["items"]] == [capa.technician, capa.owner]
    extension = record["items"][1]["extensions"][0]
    assert (extension["from"], extension["to"], extension["reason"]) == (
        capa.day(9), capa.day(12), "Tooling lead time")
    assert record["approvals"][0]["signature"]["full_name"] == "Maria Hernandez"
    assert record["verifications"][0]["signature"]["meaning"] == "verification"
    assert record["closure"]["signature"]["user_id"] == capa.quality_manager
    for moment in (record["created_at"], record["updated_at"], extension["at"],
                   record["closure"]["signature"]["signed_at"]):
        assert moment.endswith("Z")


def test_a_verdict_is_exactly_one_of_effective_and_not_effective(capa: Capa) -> None:
    ca = capa.implemented_ca(capa.assessed_nc())
    for flags in (["--effective", "--not-effective"], []):
        error = capa.refused("ca", "verify", ca, *flags, "--note", "Checked", code=2,
                             user=capa.verifier)
        assert "exactly one of --effective, --not-effective and --inconclusive" in error["message"]


def test_a_second_iteration_is_refused_a_plan_before_its_new_analysis(capa: Capa) -> None:
    ca = capa.implemented_ca(capa.assessed_nc())
    capa.write("ca", "verify", ca, "--not-effective", "--note", "Recurred", user=capa.verifier)
    capa.refused("ca", "plan", ca, "--action", "Moisture check", "--assignee", capa.technician,
                 "--due", capa.day(3), "--type", "corrective", code=1, rule="R7",
                 user=capa.owner)


def test_not_effective_returns_to_investigation(capa: Capa) -> None:
    ca = capa.implemented_ca(capa.assessed_nc())
    result = capa.write("ca", "verify", ca, "--not-effective", "--note", "Recurred",
                        user=capa.verifier)
    assert (result["status"], result["iteration"]) == ("investigated", 2)
    again = capa.write("ca", "investigate", ca, "--method", "ishikawa", "--root-cause",
                       "Resin moisture", "--category", "material", user=capa.owner)
    assert again["status"] == "investigated"
    planned = capa.write("ca", "plan", ca, "--action", "Moisture check", "--assignee",
                         capa.technician, "--due", capa.day(3), "--type", "corrective",
                         user=capa.owner)
    assert planned["action"] == "A3"
    record = capa.run("--json", "ca", "show", ca).json()
    assert record["iteration"] == 2
    assert [(v["iteration"], v["effective"]) for v in record["verifications"]] == [(1, False)]
    assert record["root_cause"]["root_cause"] == "Resin moisture"


def test_planning_after_approval_voids_it(capa: Capa) -> None:
    ca = capa.approved_ca()
    result = capa.write("ca", "plan", ca, "--action", "Retrain", "--assignee", capa.technician,
                        "--due", capa.day(30), "--type", "preventive", user=capa.owner)
    assert result["status"] == "planned"
    record = capa.run("--json", "ca", "show", ca).json()
    assert [a["voided"] for a in record["approvals"]] == [True]


def test_cancel_and_reopen(capa: Capa) -> None:
    ca = capa.planned_ca()
    cancelled = capa.write("ca", "cancel", ca, "--reason", "Merged into another CA")
    assert cancelled["status"] == "cancelled"
    reopened = capa.write("ca", "reopen", ca, "--reason", "Not merged after all")
    assert (reopened["status"], reopened["version"]) == ("investigated", cancelled["version"] + 1)
    capa.refused("ca", "reopen", ca, "--reason", "again", code=1, rule="R7")


def test_ca_show_at_a_version_or_time_and_history(capa: Capa) -> None:
    ca = capa.approved_ca()
    old = capa.run("--json", "ca", "show", ca, "--version", "3").json()
    assert (old["version"], old["status"], len(old["items"])) == (3, "planned", 1)
    trail = capa.run("--json", "history", ca).json()
    assert [e["event_type"] for e in trail] == ["Opened", "RootCauseAnalysed",
                                                "ActionItemPlanned", "ActionItemPlanned",
                                                "PlanApproved"]
    at = capa.run("--json", "ca", "show", ca, "--as-of", trail[3]["time"]).json()
    assert (at["version"], at["status"]) == (4, "planned")
    assert capa.run("--json", "ca", "show", ca, "--as-of", capa.day(0)).json()["version"] == 5
    approval = trail[-1]["signature"]
    assert (approval["user_id"], approval["meaning"]) == (capa.quality_manager, "approval")
    assert approval["signed_version"] == 4
    assert re.fullmatch(r"[0-9a-f]{64}", approval["content_sha256"])
    capa.refused("ca", "show", ca, "--version", "6", code=3)
    capa.refused("ca", "show", ca, "--version", "2", "--as-of", capa.day(0), code=2)


def test_ca_list_filters_and_shape(capa: Capa) -> None:
    late = capa.ca()
    capa.write("ca", "investigate", late, "--method", "other", "--root-cause", "x",
               "--category", "method", user=capa.owner)
    capa.write("ca", "plan", late, "--action", "Overdue", "--assignee", capa.owner, "--due",
               capa.day(-2), "--type", "corrective", "--allow-past-due", "--reason",
               "Planned late on purpose: the list must show an overdue CA", user=capa.owner)
    capa.write("ca", "approve", late)
    on_time = capa.approved_ca()
    rows = capa.run("--json", "ca", "list").json()
    assert {r["id"] for r in rows} == {late, on_time}
    for row in rows:
        assert {"id", "status", "title"} <= set(row)

    def ids(*filters: str) -> set[str]:
        outcome = capa.run("--json", "ca", "list", *filters)
        assert outcome.code == 0, outcome.stderr
        return {row["id"] for row in outcome.json()}

    assert ids("--overdue") == {late}
    assert ids("--status", "approved") == {late, on_time}
    assert ids("--status", "closed") == set()
    overdue = capa.run("--json", "overdue").json()
    assert [(o["ca"], o["action"]) for o in overdue] == [(late, "A1")]
    assert overdue[0]["days_overdue"] == 2


# -- evidence --------------------------------------------------------------------------------


def test_evidence_is_recorded_by_digest(capa: Capa, tmp_path: Path) -> None:
    ca = capa.approved_ca()
    report = tmp_path / "sort-report.csv"
    report.write_bytes(b"unit,result\n1,ok\n")
    capa.write("ca", "complete", ca, "A1", "--note", "Sorted", "--evidence", str(report),
               user=capa.technician)
    before = capa.events()
    capa.write("ca", "complete", ca, "A2", "--note", "Replaced", "--evidence", str(report),
               user=capa.owner)
    assert capa.events() == before + 1  # the same content is not stored twice
    items = capa.run("--json", "ca", "show", ca).json()["items"]
    digest = hashlib.sha256(report.read_bytes()).hexdigest()
    for item in items:
        assert item["evidence"] == [{"name": "sort-report.csv", "size": report.stat().st_size,
                                     "media_type": "text/csv", "sha256": digest}]


def test_evidence_over_25_mib_or_missing_exits_2(capa: Capa, tmp_path: Path) -> None:
    ca = capa.approved_ca()
    big = tmp_path / "scan.pdf"
    with big.open("wb") as f:
        f.truncate(25 * 1024 * 1024 + 1)
    error = capa.refused("ca", "complete", ca, "A1", "--note", "Sorted", "--evidence", str(big),
                         code=2, user=capa.technician)
    assert "25 MiB" in error["message"]
    capa.refused("ca", "complete", ca, "A1", "--note", "Sorted", "--evidence",
                 str(tmp_path / "missing.pdf"), code=2, user=capa.technician)


def test_evidence_of_exactly_25_mib_is_saved_by_a_real_process(capa: Capa,
                                                              tmp_path: Path) -> None:
    # On PostgreSQL a save this large once hung for good inside psycopg's pipeline mode.
    ca = capa.approved_ca()
    scan = tmp_path / "scan.pdf"
    scan.write_bytes(os.urandom(25 * 1024 * 1024))
    before = capa.events()
    done = capa.process("--json", "ca", "complete", ca, "A1", "--note", "Sorted", "--evidence",
                        str(scan), user=capa.technician)
    assert done.code == 0, done.stderr
    assert capa.events() == before + 2  # the action item, and the file stored once
    shown = capa.run("--json", "ca", "show", ca).json()
    [evidence] = shown["items"][0]["evidence"]
    assert (evidence["name"], evidence["size"]) == ("scan.pdf", 25 * 1024 * 1024)
    assert evidence["sha256"] == hashlib.sha256(scan.read_bytes()).hexdigest()


# -- refusals: exit code, and not one event written ------------------------------------------


def test_rule_refusals_exit_1_naming_the_rule(capa: Capa) -> None:
    # The owner holds the quality role, so only the rules stand in the way.
    ca = capa.ca(owner=capa.quality_engineer)
    engineer = capa.quality_engineer
    capa.refused("ca", "plan", ca, "--action", "x", "--assignee", engineer, "--due",
                 capa.day(3), "--type", "corrective", code=1, rule="R7", user=engineer)
    capa.refused("ca", "close", ca, code=1, rule="R4")
    capa.write("ca", "investigate", ca, "--method", "other", "--root-cause", "SOP gap",
               "--category", "method", user=engineer)
    capa.refused("ca", "approve", ca, code=1, rule="R7")
    capa.write("ca", "plan", ca, "--action", "Revise SOP", "--assignee", engineer, "--due",
               capa.day(3), "--type", "corrective", user=engineer)
    capa.refused("ca", "approve", ca, code=1, rule="R2", user=engineer)
    capa.refused("ca", "complete", ca, "A1", "--note", "early", code=1, rule="R7",
                 user=engineer)
    capa.refused("ca", "extend", ca, "A1", "--due", capa.day(9), "--reason", "x", code=1,
                 rule="R7")
    capa.write("ca", "approve", ca)
    capa.refused("ca", "extend", ca, "A1", "--due", capa.day(3), "--reason", "same day",
                 code=1, rule="R5")
    capa.refused("ca", "extend", ca, "A1", "--due", capa.day(2), "--reason", "earlier",
                 code=1, rule="R5")
    capa.refused("ca", "extend", ca, "A1", "--due", capa.day(9), "--reason", " ", code=1,
                 rule="R5")
    capa.refused("ca", "close", ca, code=1, rule="R4")
    capa.refused("ca", "verify", ca, "--effective", "--note", "early", code=1, rule="R7",
                 user=capa.verifier)
    capa.write("ca", "complete", ca, "A1", "--note", "SOP-12 rev D", user=engineer)
    capa.refused("ca", "complete", ca, "A1", "--note", "twice", code=1, rule="R7",
                 user=engineer)
    capa.refused("ca", "verify", ca, "--effective", "--note", "self-check", code=1, rule="R3",
                 user=engineer)
    capa.refused("ca", "close", ca, code=1, rule="R4")
    capa.write("ca", "verify", ca, "--effective", "--note", "Ten files checked",
               user=capa.verifier)
    capa.refused("ca", "close", ca, code=1, rule="R2", user=engineer)
    capa.refused("ca", "cancel", ca, "--reason", "", code=1, rule="R6")
    capa.write("ca", "close", ca)
    capa.refused("ca", "cancel", ca, "--reason", "late", code=1, rule="R7")
    capa.refused("ca", "close", ca, code=1, rule="R7")
    capa.refused("ca", "reopen", ca, "--reason", "", code=1, rule="R6")


def test_ca_open_refuses_ncs_not_assessed_as_needing_one(capa: Capa) -> None:
    fresh_nc = capa.nc()
    capa.refused("ca", "open", "--title", "t", "--problem", "p", "--owner", capa.owner,
                 "--nc", fresh_nc, code=1, rule="R7", user=capa.quality_engineer)
    no_ca = capa.assessed_nc("No CA needed", capa_required=False)
    capa.refused("ca", "open", "--title", "t", "--problem", "p", "--owner", capa.owner,
                 "--nc", no_ca, code=1, rule="R7", user=capa.quality_engineer)
    capa.refused("ca", "open", "--title", "t", "--problem", "p", "--owner", capa.owner,
                 "--nc", f"NC-{capa.year}-0042", code=3, user=capa.quality_engineer)


@pytest.mark.parametrize(
    "args",
    [
        ("investigate", "{ca}", "--method", "guess", "--root-cause", "x", "--category",
         "machine"),
        ("investigate", "{ca}", "--method", "other", "--root-cause", "x", "--category",
         "money"),
        ("investigate", "{ca}", "--method", "5-whys", "--root-cause", "x", "--category",
         "machine"),
        ("investigate", "{ca}", "--method", "other", "--root-cause", " ", "--category",
         "machine"),
        ("plan", "{ca}", "--action", "x", "--assignee", "lnguyen", "--due", "2026-02-30",
         "--type", "corrective"),
        ("plan", "{ca}", "--action", "x", "--assignee", "lnguyen", "--due", "tomorrow",
         "--type", "corrective"),
        ("plan", "{ca}", "--action", "x", "--assignee", "lnguyen", "--due", "2026-12-01",
         "--type", "wish"),
        ("verify", "{ca}", "--note", "neither effective nor not"),
        ("show", "NC-2026-0001"),
        ("show", "{ca}", "--version", "-1"),
    ],
)
def test_invalid_ca_input_exits_2(capa: Capa, args: tuple[str, ...]) -> None:
    ca = capa.ca()
    if args[0] == "plan":
        capa.write("ca", "investigate", ca, "--method", "other", "--root-cause", "x",
                   "--category", "method", user=capa.owner)
    capa.refused("ca", *(a.format(ca=ca) for a in args), code=2, user=capa.owner
                 if args[0] in ("investigate", "plan") else capa.quality_manager)


def test_bad_extension_date_exits_2(capa: Capa) -> None:
    ca = capa.approved_ca()
    capa.refused("ca", "extend", ca, "A1", "--due", "31.12.2026", "--reason", "x", code=2)


def test_missing_records_and_items_exit_3(capa: Capa) -> None:
    missing = f"CA-{capa.year}-0042"
    capa.refused("ca", "show", missing, code=3)
    capa.refused("ca", "approve", missing, code=3)
    capa.refused("ca", "close", missing, code=3)
    capa.refused("ca", "cancel", missing, "--reason", "x", code=3)
    ca = capa.approved_ca()
    capa.refused("ca", "complete", ca, "A9", "--note", "x", code=3, user=capa.owner)
    capa.refused("ca", "extend", ca, "A9", "--due", capa.day(99), "--reason", "x", code=3)


def test_not_permitted_exits_4(capa: Capa) -> None:
    ca = capa.approved_ca()
    # A2 is assigned to the owner: the technician may not complete it.
    error = capa.refused("ca", "complete", ca, "A2", "--note", "x", code=4,
                         user=capa.technician)
    assert re.search(r"assignee|owner", error["message"])
    capa.refused("ca", "approve", ca, code=4, user=capa.owner)
    capa.refused("ca", "open", "--title", "t", "--problem", "p", "--owner", capa.owner,
                 code=4, user=capa.reporter)


def _implemented_by(capa: Capa, owner: str, assignee: str, completer: str) -> str:
    """A CA of `owner` whose one item, assigned to `assignee`, `completer` recorded as done."""
    ca = capa.ca(owner=owner)
    capa.write("ca", "investigate", ca, "--method", "other", "--root-cause", "Worn insert",
               "--category", "machine", user=owner)
    capa.write("ca", "plan", ca, "--action", "Replace insert", "--assignee", assignee, "--due",
               capa.day(5), "--type", "corrective", user=owner)
    capa.write("ca", "approve", ca, user=capa.quality_manager)
    capa.write("ca", "complete", ca, "A1", "--note", "Replaced", user=completer)
    return ca


def test_r3_holds_the_assignee_whose_completion_the_owner_recorded(capa: Capa) -> None:
    """SPEC §9.6: the item's assignee implemented it, even when the owner recorded it done."""
    ca = _implemented_by(capa, owner=capa.owner, assignee=capa.verifier, completer=capa.owner)
    error = capa.refused("ca", "verify", ca, "--effective", "--note", "Fine", code=1,
                         rule="R3", user=capa.verifier)
    assert capa.verifier in error["message"] and "A1" in error["message"]
    capa.refused("ca", "verify", ca, "--not-effective", "--note", "Recurred", code=1,
                 rule="R3", user=capa.verifier)
    capa.write("ca", "verify", ca, "--effective", "--note", "Fine", user=capa.quality_manager)


def test_r3_a_ca_owner_never_verifies_its_effectiveness(capa: Capa) -> None:
    """The owner (here also of the quality role) answers for every action, even one that
    someone else carried out and recorded."""
    engineer = capa.quality_engineer
    ca = _implemented_by(capa, owner=engineer, assignee=capa.technician,
                         completer=capa.technician)
    error = capa.refused("ca", "verify", ca, "--effective", "--note", "Fine", code=1,
                         rule="R3", user=engineer)
    assert "owns" in error["message"]
    capa.write("ca", "verify", ca, "--effective", "--note", "Fine", user=capa.verifier)
