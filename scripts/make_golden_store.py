"""Build the golden store: a small, realistic store written by this release, kept under tests/.

    .venv/bin/python scripts/make_golden_store.py [tests/golden/golden-v1.db]

Run once per store format; the file it writes is committed and never rebuilt, so that every
later release is tested against events written by this one (SPEC §4, §8). Next to the store it
writes `<name>.json`: each record's id, kind, status and version as this release saw them, which
tests/reliability/test_golden.py checks the store still reproduces. Every user's password is
GOLDEN_PASSWORD.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from capa.app.application import CapaApplication  # noqa: E402
from capa.app.store import open_store  # noqa: E402

GOLDEN_PASSWORD = "golden-store-password-1"
DEFAULT_PATH = Path(__file__).resolve().parent.parent / "tests" / "golden" / "golden-v1.db"

PEOPLE = {
    "mhernandez": ("Maria Hernandez", ["admin", "quality"]),
    "jchen": ("Jun Chen", ["quality"]),
    "apatel": ("Anil Patel", ["owner"]),
    "lnguyen": ("Linh Nguyen", ["owner"]),
    "tokafor": ("Tolu Okafor", ["reporter"]),
    "sbauer": ("Sabine Bauer", ["auditor"]),
}


def build(app: CapaApplication, evidence: Path) -> None:
    today = dt.datetime.now(dt.UTC).date()

    def due(days: int) -> str:
        return (today + dt.timedelta(days=days)).isoformat()

    def as_(user: str) -> Any:
        return app.acting_as(user, GOLDEN_PASSWORD)

    app.identity.initialise("Northwind Medical Devices", admin="mhernandez",
                            full_name="Maria Hernandez",
                            password=GOLDEN_PASSWORD)
    with as_("mhernandez"):
        app.identity.grant_role("mhernandez", "quality")
        for user, (name, roles) in PEOPLE.items():
            if user != "mhernandez":
                app.identity.add_user(user, full_name=name, roles=roles, password=GOLDEN_PASSWORD)
        app.identity.deactivate_user("lnguyen")
        app.identity.revoke_role("jchen", "quality")
        app.identity.grant_role("jchen", "quality")

    with as_("tokafor"):
        housing = app.nonconformities.raise_nc(title="Cracked housing on IP-200",
                                               description="Hairline crack "
                                               "at boss B2 found at final inspection",
                                               source="process",
                                               severity="major", product="IP-200", lot="L2311").id
        resin = app.nonconformities.raise_nc(title="Resin melt flow out of spec",
                                             description="Certificate "
                                             "shows MFI 14, spec 8-12", source="supplier",
                                             severity="minor",
                                             lot="R-0907", external_ref="SUP-4471").id
        label = app.nonconformities.raise_nc(title="Label smudged",
                                             description="UDI label unreadable on 3 "
                                             "units", source="customer-complaint", severity="minor",
                                             detected_on=due(-3)).id
        duplicate = app.nonconformities.raise_nc(title="Cracked housing (again)",
                                                 description="Same as the "
                                                 "first", source="process", severity="major").id
        app.nonconformities.contain_nc(housing, action="Lot L2311 quarantined",
                                       disposition="quarantine")
        app.nonconformities.contain_nc(housing, action="312 units sorted", disposition="rework")
        app.nonconformities.contain_nc(label, action="Units relabelled", disposition="rework")
    with as_("jchen"):
        app.nonconformities.amend_nc(resin, field="lot", value="R-0908",
                                     reason="Typo in the lot number")
        app.nonconformities.assess_nc(housing, impact=4, likelihood=3, capa_required=True)
        app.nonconformities.assess_nc(resin, impact=2, likelihood=2, capa_required=True)
        app.nonconformities.assess_nc(label, impact=2, likelihood=1, capa_required=False,
                                      rationale="Isolated printer fault, fixed by maintenance")
        app.nonconformities.close_nc(label)
        app.nonconformities.cancel_nc(duplicate, reason="Duplicate of the first housing report")
        app.nonconformities.reopen_nc(duplicate, reason="Different lot after all")
        app.nonconformities.cancel_nc(duplicate, reason="Confirmed duplicate")
        ca = app.corrective_actions.open_ca(title="Housing cracks at boss B2",
                                            problem="Cracks at boss B2 in lot "
                                            "L2311", owner="apatel", ncs=[housing]).id
        supplier_ca = app.corrective_actions.open_ca(title="Resin supplier control",
                                                     problem="Out-of-spec resin "
                                                     "accepted at incoming inspection",
                                                     owner="apatel").id
        app.corrective_actions.link_nc(resin, supplier_ca)
    with as_("apatel"):
        app.corrective_actions.investigate_ca(ca, method="5-whys", root_cause="Worn gate insert",
                                              category="machine", whys=["Boss cracks",
                                                                        "Wall too thin",
                                                                        "Gate insert worn"])
        app.corrective_actions.plan_ca(ca, action="Sort lot L2311", assignee="apatel", due=due(10),
                                       action_type="correction")
        app.corrective_actions.plan_ca(ca, action="Replace gate insert; add to PM plan",
                                       assignee="apatel",
                                       due=due(20), action_type="corrective")
        app.corrective_actions.investigate_ca(supplier_ca, method="ishikawa",
                                              root_cause="No MFI check on "
                                              "receipt", category="measurement")
        app.corrective_actions.plan_ca(supplier_ca, action="Add MFI to incoming inspection",
                                       assignee="apatel",
                                       due=due(30), action_type="preventive")
    with as_("mhernandez"):
        app.corrective_actions.approve_ca(ca)
        app.corrective_actions.extend_action(ca, "A2", due=due(25), reason="Insert on back order")
    with as_("apatel"):
        app.corrective_actions.complete_action(ca, "A1", note="312 sorted, 27 scrapped",
                                               evidence=[evidence])
        app.corrective_actions.complete_action(ca, "A2", note="Insert replaced, PM plan rev C")
    with as_("jchen"):
        app.corrective_actions.verify_ca(ca, effective=False, note="Cracks again in lot L2315")
    with as_("apatel"):
        # golden-v1.db was made before a second iteration had to re-examine its root cause
        # first; this step keeps the script runnable on today's release.
        app.corrective_actions.investigate_ca(ca, method="ishikawa", category="machine",
                                              root_cause="Boss wall at B2 too thin for the "
                                                         "clamping load")
        app.corrective_actions.plan_ca(ca, action="Raise wall thickness at B2", assignee="apatel",
                                       due=due(40),
                                       action_type="corrective")
    with as_("mhernandez"):
        app.corrective_actions.approve_ca(ca)
    with as_("apatel"):
        app.corrective_actions.complete_action(ca, "A3", note="Tool modified, FAI passed")
    with as_("jchen"):
        app.corrective_actions.verify_ca(ca, effective=True, note="No cracks in 3 lots")
    with as_("mhernandez"):
        app.corrective_actions.close_ca(ca)


def manifest(app: CapaApplication, path: Path) -> dict[str, Any]:
    records = []
    with sqlite3.connect(path) as db:
        ids = [row[0] for row in db.execute(
            "SELECT DISTINCT originator_id FROM stored_events ORDER BY rowid")]
        count = db.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0]
    for hex_id in ids:
        from uuid import UUID

        record: Any = app.repository.get(UUID(hex=hex_id))
        ref = getattr(record, "ref", None) or getattr(record, "user_id", None)
        records.append({"id": ref, "kind": type(record).__name__,
                        "status": getattr(record, "status", None), "version": record.version})
    return {"format": "golden-v1", "password": GOLDEN_PASSWORD, "events": count,
            "records": records}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH)
    path: Path = parser.parse_args().path
    if path.exists():
        sys.exit(f"{path} exists: the golden store is never rebuilt in place")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        evidence = Path(folder) / "sort-record.csv"
        evidence.write_text("lot,sorted,scrapped\nL2311,312,27\n")
        built = Path(folder) / "golden.db"
        app = open_store(str(built), create=True)
        build(app, evidence)
        facts = manifest(app, built)
        app.close()
        # One self-contained file, whatever is still in the write-ahead log.
        with sqlite3.connect(built) as source, sqlite3.connect(path) as copy:
            source.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")
            copy.execute("VACUUM")
    path.with_suffix(".json").write_text(json.dumps(facts, indent=2) + "\n")
    print(f"{path}: {facts['events']} events, {len(facts['records'])} records")


if __name__ == "__main__":
    main()
