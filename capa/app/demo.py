"""A realistic demo store: several NCs from different sources and one CA through its whole life,
including an ineffective verification and a second iteration."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from tempfile import TemporaryDirectory

from capa.app.service import CapaApplication

QUALITY_MANAGER = "mhernandez"
QUALITY_ENGINEER = "jchen"
ACTION_OWNER = "apatel"
TECHNICIAN = "lnguyen"
VERIFIER = "rkowalski"
REPORTER = "tokafor"
ADMINISTRATOR = "sysadmin"

#: The story is told today with dates in the past: its plans accept past due dates (R5).
PAST_DUE_REASON = "demo story: plans recorded after the fact to show overdue items"

#: Everyone in the story shares one password so that a visitor can log in as any of them.
DEMO_PASSWORD = "northwind-demo"

#: The accounts the story needs: user id -> printed name (shown on signatures), roles.
PEOPLE: dict[str, tuple[str, list[str]]] = {
    ADMINISTRATOR: ("Sam Ortega", ["admin"]),
    QUALITY_MANAGER: ("Maria Hernandez", ["quality"]),
    QUALITY_ENGINEER: ("Jia Chen", ["quality"]),
    ACTION_OWNER: ("Anil Patel", ["owner"]),
    TECHNICIAN: ("Linh Nguyen", ["owner"]),
    VERIFIER: ("Roman Kowalski", ["quality"]),
    REPORTER: ("Tunde Okafor", ["reporter"]),
}


def build_demo(app: CapaApplication, key_fingerprint: str | None = None) -> dict[str, str]:
    """Tell the story; return the ids of the records a tour should show. With the fingerprint
    of a signing key, the store is bound to that key as `capa init` binds it."""
    today = dt.datetime.now(dt.UTC).date()

    def days(n: int) -> str:
        return (today + dt.timedelta(days=n)).isoformat()

    app.initialise("Northwind Medical Devices", key_fingerprint, admin=ADMINISTRATOR,
                   full_name=PEOPLE[ADMINISTRATOR][0], password=DEMO_PASSWORD)
    with app.acting_as(ADMINISTRATOR, DEMO_PASSWORD):
        for user, (full_name, roles) in PEOPLE.items():
            if user != ADMINISTRATOR:
                app.add_user(user, full_name=full_name, roles=roles, password=DEMO_PASSWORD)

    with app.acting_as(REPORTER, DEMO_PASSWORD):
        crack = app.raise_nc(
            title="Cracked housing on infusion pump IP-200",
            description="Customer reports hairline crack at screw boss B2 after three weeks "
                        "of use; two more units found cracked in returned stock.",
            source="customer-complaint", severity="major", product="IP-200 housing",
            lot="L2311", external_ref="COMP-2026-0142", detected_on=days(-40)).id
        app.contain_nc(crack, action="Lot L2311 quarantined in finished goods; field units "
                                     "under customer notification", disposition="quarantine")
    with app.acting_as(QUALITY_ENGINEER, DEMO_PASSWORD):
        records = app.raise_nc(
            title="Calibration record missing for torque driver TD-14",
            description="Internal audit found no calibration certificate on file for TD-14 "
                        "for the March interval.",
            source="internal-audit", severity="minor", product="Assembly cell 2",
            external_ref="IA-2026-07 finding 3", detected_on=days(-35)).id
        resin = app.raise_nc(
            title="Resin lot outside melt-flow specification",
            description="Incoming inspection: MFI 14.2 g/10 min against 10-12 specified.",
            source="supplier", severity="major", product="PC resin RX-40", lot="R-8812",
            detected_on=days(-33)).id
        app.contain_nc(resin, action="Resin lot R-8812 returned to supplier",
                       disposition="return-to-supplier")
        seal = app.raise_nc(
            title="Seal strength below limit on pouch line 3",
            description="12 of 50 sampled pouches below 8 N peel strength at start of shift.",
            source="process", severity="critical", product="Sterile pouch P-10", lot="L2407",
            detected_on=days(-2)).id
        app.contain_nc(seal, action="Line 3 stopped; shift output on hold",
                       disposition="quarantine")
        inspection = app.raise_nc(
            title="Complaint files lack documented investigation decision",
            description="FDA Form 483 observation 2: complaint files do not document the "
                        "decision not to investigate.",
            source="regulatory-inspection", severity="major",
            external_ref="FDA 483 obs. 2", detected_on=days(-20)).id

    with app.acting_as(QUALITY_MANAGER, DEMO_PASSWORD):
        app.assess_nc(crack, impact=4, likelihood=3, capa_required=True)
        app.assess_nc(resin, impact=3, likelihood=3, capa_required=True)
        app.assess_nc(records, impact=2, likelihood=1, capa_required=False,
                      rationale="Certificate obtained from the calibration house and filed; "
                                "TD-14 was within tolerance. Isolated filing slip.")
        app.close_nc(records)
        app.assess_nc(inspection, impact=3, likelihood=4, capa_required=True)
        housing = app.open_ca(
            title="Housing cracks at screw boss B2",
            problem="IP-200 housings crack at boss B2 within weeks of assembly (COMP-2026-0142, "
                    "resin lot R-8812).",
            owner=ACTION_OWNER, ncs=[crack, resin]).id
        complaints = app.open_ca(
            title="Complaint investigation decisions not documented",
            problem="Complaint files lack the documented decision required by 820.198.",
            owner=QUALITY_ENGINEER, ncs=[inspection]).id

    with app.acting_as(ACTION_OWNER, DEMO_PASSWORD):
        app.investigate_ca(
            housing, method="5-whys", category="machine",
            whys=["The boss cracks under screw torque",
                  "Hoop stress at the boss exceeds the material's limit",
                  "Wall thickness at the boss is below drawing minimum",
                  "The mould gate insert is worn and short-shots the boss"],
            root_cause="Worn gate insert on mould M-17 gives thin boss walls")
        app.plan_ca(housing, action="Sort and scrap housings from lot L2311", assignee=TECHNICIAN,
                    due=days(-25), action_type="correction", past_due_reason=PAST_DUE_REASON)
        app.plan_ca(housing, action="Replace gate insert on mould M-17", assignee=ACTION_OWNER,
                    due=days(-18), action_type="corrective", past_due_reason=PAST_DUE_REASON)
    with app.acting_as(QUALITY_MANAGER, DEMO_PASSWORD):
        app.approve_ca(housing)
    with app.acting_as(TECHNICIAN, DEMO_PASSWORD):
        app.complete_action(housing, "A1", note="312 housings sorted, 27 scrapped")
    with app.acting_as(ACTION_OWNER, DEMO_PASSWORD):
        app.complete_action(housing, "A2", note="Insert replaced; first-article wall 1.52 mm")
    with app.acting_as(VERIFIER, DEMO_PASSWORD):
        app.verify_ca(housing, effective=False,
                      note="Two cracked bosses found in lot L2402 built after the change: "
                           "the root cause was not fully addressed.")
    with app.acting_as(ACTION_OWNER, DEMO_PASSWORD):
        app.investigate_ca(
            housing, method="ishikawa", category="material",
            root_cause="Resin moisture above 0.02 % at moulding weakens the boss; the dryer "
                       "residence time is not controlled")
        app.plan_ca(housing, action="Add resin moisture check before each moulding run",
                    assignee=TECHNICIAN, due=days(-8), action_type="corrective",
                    past_due_reason=PAST_DUE_REASON)
        app.plan_ca(housing, action="Add dryer residence time to the moulding PFMEA and "
                                    "control plan for all moulded parts",
                    assignee=ACTION_OWNER, due=days(-6), action_type="preventive",
                    past_due_reason=PAST_DUE_REASON)
    with app.acting_as(QUALITY_MANAGER, DEMO_PASSWORD):
        app.approve_ca(housing)
    with app.acting_as(TECHNICIAN, DEMO_PASSWORD), TemporaryDirectory() as folder:
        record = Path(folder) / "moisture-check-record.csv"
        record.write_text("run,moisture_pct\n1,0.012\n2,0.011\n3,0.014\n", encoding="utf-8")
        app.complete_action(housing, "A3", note="Moisture check in work instruction WI-220 "
                                                "rev C; first three runs recorded",
                            evidence=[record])
    with app.acting_as(ACTION_OWNER, DEMO_PASSWORD):
        app.complete_action(housing, "A4", note="PFMEA PF-031 rev F and control plan updated")
    with app.acting_as(VERIFIER, DEMO_PASSWORD):
        app.verify_ca(housing, effective=True,
                      note="Six lots, 2,400 units since the change: no cracks; boss wall "
                           "thickness Cpk 1.8")
    with app.acting_as(QUALITY_MANAGER, DEMO_PASSWORD):
        app.close_ca(housing)

    with app.acting_as(QUALITY_ENGINEER, DEMO_PASSWORD):
        app.investigate_ca(
            complaints, method="fault-tree", category="method",
            root_cause="Complaint SOP-12 has no field for the no-investigation decision")
        app.plan_ca(complaints, action="Revise SOP-12 and the complaint form",
                    assignee=QUALITY_ENGINEER, due=days(-3), action_type="corrective",
                    past_due_reason=PAST_DUE_REASON)
    with app.acting_as(QUALITY_MANAGER, DEMO_PASSWORD):
        app.approve_ca(complaints)
        app.extend_action(complaints, "A1", due=days(-1),
                          reason="Form change needs the document-control board of the 20th",
                          allow_past_due=True)

    # A year of history behind the story, so lists and the dashboard have something to show.
    from capa.app.demo_data import grow_demo

    grow_demo(app, {"reporter": QUALITY_ENGINEER, "quality": QUALITY_MANAGER,
                    "owner": ACTION_OWNER, "technician": TECHNICIAN, "verifier": VERIFIER},
              DEMO_PASSWORD)
    return {"ca": housing, "nc_no_ca": records, "open_nc": seal, "overdue_ca": complaints}
