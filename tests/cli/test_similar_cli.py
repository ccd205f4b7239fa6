"""Similar records through the command line (SPEC §12): `nc raise` names the open NCs of the
same product with a similar title, as a hint that never refuses; `nc list --similar NC` lists
them, from the records' events."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Capa

POUCH = "Pouch P-10"


def raise_nc(capa: Capa, title: str, product: str | None = POUCH) -> dict[str, object]:
    extra = ["--product", product] if product is not None else []
    return capa.write("nc", "raise", "--title", title, "--description", "Seen on line 3",
                      "--source", "process", "--severity", "major", *extra, user=capa.reporter)


def ids(capa: Capa, ref: str) -> list[str]:
    outcome = capa.run("--json", "nc", "list", "--similar", ref)
    assert outcome.code == 0, outcome.stderr
    rows = outcome.json()
    assert all({"id", "status", "title"} <= set(row) for row in rows)
    return [row["id"] for row in rows]


def test_raising_names_the_open_similar_ncs_of_the_same_product(capa: Capa) -> None:
    first = raise_nc(capa, "Seal strength low on pouch")["id"]
    other_product = raise_nc(capa, "Seal strength low", product="Tray T-2")["id"]
    unrelated = raise_nc(capa, "Label smudged")["id"]
    cancelled = raise_nc(capa, "Seal strength too low")["id"]
    capa.write("nc", "cancel", cancelled, "--reason", "Raised twice")
    raised = raise_nc(capa, "Low seal strength, line 3", product="pouch p-10 ")
    assert raised["similar"] == [{"id": first, "status": "open",
                                  "title": "Seal strength low on pouch"}]
    assert {other_product, unrelated, cancelled}.isdisjoint(
        s["id"] for s in raised["similar"])  # type: ignore[union-attr]

    human = capa.run("nc", "raise", "--title", "Seal strength low again", "--description", "d",
                     "--source", "process", "--severity", "minor", "--product", POUCH,
                     user=capa.reporter)
    assert human.code == 0
    assert human.stdout.startswith("NC-") and "similar" not in human.stdout
    assert human.stderr.startswith("hint: 2 open NCs of the same product with a similar title")
    assert first in human.stderr and str(raised["id"]) in human.stderr
    assert f"capa nc list --similar {human.stdout.split(':')[0]}" in human.stderr


def test_the_hint_never_refuses_and_is_empty_without_a_product(capa: Capa) -> None:
    raise_nc(capa, "Seal strength low")
    again = raise_nc(capa, "Seal strength low")
    assert again["status"] == "open" and len(again["similar"]) == 1  # type: ignore[arg-type]
    assert raise_nc(capa, "Seal strength low", product=None)["similar"] == []
    quiet = capa.run("nc", "raise", "--title", "Seal strength low", "--description", "d",
                     "--source", "process", "--severity", "minor", user=capa.reporter)
    assert quiet.code == 0 and quiet.stderr == ""


def test_a_hostile_title_is_shown_escaped_in_the_hint(capa: Capa) -> None:
    raise_nc(capa, "Seal strength low \u202eDER")
    human = capa.run("nc", "raise", "--title", "Seal strength low", "--description", "d",
                     "--source", "process", "--severity", "minor", "--product", POUCH,
                     user=capa.reporter)
    assert human.code == 0
    assert "\u202e" not in human.stderr and "\\u202eDER" in human.stderr


def test_list_similar_follows_the_records(capa: Capa) -> None:
    seal = raise_nc(capa, "Seal strength low on pouch")["id"]
    weak = raise_nc(capa, "Weak seal strength")["id"]
    later = raise_nc(capa, "Low seal strength")["id"]
    raise_nc(capa, "Label smudged")
    raise_nc(capa, "Seal strength low", product="Tray T-2")
    assert ids(capa, str(later)) == [seal, weak]
    # An amendment of the title counts at once; so do cancelling and reopening.
    capa.write("nc", "amend", str(weak), "--field", "title", "--value", "Pouch label missing",
               "--reason", "Misfiled: the seal was fine")
    assert ids(capa, str(later)) == [seal]
    capa.write("nc", "cancel", str(seal), "--reason", "Duplicate of a later NC")
    assert ids(capa, str(later)) == []
    capa.write("nc", "reopen", str(seal), "--reason", "Not a duplicate after all")
    assert ids(capa, str(later)) == [seal]
    # The NC itself is never its own similar record.
    assert ids(capa, str(seal)) == [later]
    human = capa.run("nc", "list", "--similar", str(later))
    assert human.code == 0 and seal in human.stdout and "TITLE" in human.stdout


def test_an_nc_without_a_product_has_no_similar_records(capa: Capa) -> None:
    raise_nc(capa, "Seal strength low", product=None)
    lone = raise_nc(capa, "Seal strength low", product=None)["id"]
    assert ids(capa, str(lone)) == []


@pytest.mark.parametrize("args, code", [
    (("--similar", "NC-2026-9999"), 3),
    (("--similar", "CA-2026-0001"), 2),
    (("--similar", "not-an-id"), 2),
    (("--similar", "NC-2026-0001", "--status", "open"), 2),
    (("--similar", "NC-2026-0001", "--overdue"), 2),
], ids=["unknown", "a-ca", "malformed", "with-status", "with-overdue"])
def test_list_similar_misuse_is_refused(capa: Capa, args: tuple[str, ...], code: int) -> None:
    raise_nc(capa, "Seal strength low")
    capa.refused("nc", "list", *[a.replace("2026", str(capa.year)) for a in args], code=code)


def test_the_hint_reads_changes_the_read_table_has_not_caught_up_and_writes_none(
        capa: Capa) -> None:
    from tests.support.backends import query

    seal = raise_nc(capa, "Seal strength low on pouch")["id"]
    renamed = raise_nc(capa, "Label smudged")["id"]
    capa.run("nc", "list")  # the read table is now up to date
    tracked = query(capa.target, "SELECT position FROM rm_tracking")
    capa.write("nc", "cancel", str(seal), "--reason", "Raised twice")
    capa.write("nc", "amend", str(renamed), "--field", "title", "--value", "Seal strength weak",
               "--reason", "Misread the report")
    raised = raise_nc(capa, "Low seal strength")
    assert [s["id"] for s in raised["similar"]] == [renamed]  # type: ignore[union-attr]
    assert raised["similar"][0]["title"] == "Seal strength weak"  # type: ignore[index]
    assert query(capa.target, "SELECT position FROM rm_tracking") == tracked
