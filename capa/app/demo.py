"""A realistic demo store: several NCs from different sources and one CA through its whole life,
including an ineffective verification and a second iteration."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import TYPE_CHECKING, Any

from capa.app.application import CapaApplication

if TYPE_CHECKING:
    from capa.app.demo_clock import DemoClock

QUALITY_MANAGER = "mhernandez"
QUALITY_ENGINEER = "jchen"
ACTION_OWNER = "apatel"
TECHNICIAN = "lnguyen"
VERIFIER = "rkowalski"
REPORTER = "tokafor"
ADMINISTRATOR = "sysadmin"

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
    of a signing key, the store is bound to that key as `capa init` binds it.

    Every step is recorded at the moment it stands for (a demo-only clock, see demo_clock), so
    the store holds a year of history: NCs detected across twelve months, CAs closed weeks after
    they opened, some actions overdue today."""
    from capa.app.demo_clock import DemoClock
    from capa.app.demo_data import grow_demo

    today = dt.datetime.now(dt.UTC).date()
    with DemoClock(dt.datetime.combine(today - dt.timedelta(days=366), dt.time(8),
                                       tzinfo=dt.UTC)) as clock:
        _setup(app, key_fingerprint)
        # A year of history behind the story, so lists and the dashboard have something to show.
        grow_demo(app, {"reporter": QUALITY_ENGINEER, "quality": QUALITY_MANAGER,
                        "owner": ACTION_OWNER, "technician": TECHNICIAN, "verifier": VERIFIER},
                  DEMO_PASSWORD, clock)
        refs = _story(app, clock, today)
        clock.finish()
    return refs


def _setup(app: CapaApplication, key_fingerprint: str | None) -> None:
    # A device maker: the store runs under ISO 13485, so a CA closes only after its impact
    # assessment (R11).
    app.identity.initialise("Northwind Medical Devices", key_fingerprint, admin=ADMINISTRATOR,
                            full_name=PEOPLE[ADMINISTRATOR][0], password=DEMO_PASSWORD,
                            profile="iso13485")
    with app.acting_as(ADMINISTRATOR, DEMO_PASSWORD):
        for user, (full_name, roles) in PEOPLE.items():
            if user != ADMINISTRATOR:
                app.identity.add_user(user, full_name=full_name, roles=roles,
                                      password=DEMO_PASSWORD)


def _story(app: CapaApplication, clock: DemoClock, today: dt.date) -> dict[str, str]:
    """The story of the last forty days; each `on(n)` moves the clock to day n (from today)."""
    minute = {"n": 0}

    def days(n: int) -> str:
        return (today + dt.timedelta(days=n)).isoformat()

    def on(n: int) -> None:
        minute["n"] += 7
        clock.at(clock.moment(today + dt.timedelta(days=n), 60 + minute["n"] % 240))

    on(-39)
    with app.acting_as(REPORTER, DEMO_PASSWORD):
        crack = app.nonconformities.raise_nc(
            title="Cracked housing on infusion pump IP-200",
            description="Customer reports hairline crack at screw boss B2 after three weeks "
                                        "of use; two more units found cracked in returned stock.",
            source="customer-complaint", severity="major", product="IP-200 housing",
            lot="L2311", external_ref="COMP-2026-0142", detected_on=days(-40)).id
        app.nonconformities.contain_nc(crack,
                                       action="Lot L2311 quarantined in finished goods; field "
                                              "units "
                                              "under customer notification",
                                       disposition="quarantine")
    on(-35)
    with app.acting_as(QUALITY_ENGINEER, DEMO_PASSWORD):
        records = app.nonconformities.raise_nc(
            title="Calibration record missing for torque driver TD-14",
            description="Internal audit found no calibration certificate on file for TD-14 "
                                        "for the March interval.",
            source="internal-audit", severity="minor", product="Assembly cell 2",
            external_ref="IA-2026-07 finding 3", detected_on=days(-35)).id
    on(-33)
    with app.acting_as(QUALITY_ENGINEER, DEMO_PASSWORD):
        resin = app.nonconformities.raise_nc(
            title="Resin lot outside melt-flow specification",
            description="Incoming inspection: MFI 14.2 g/10 min against 10-12 specified.",
            source="supplier", severity="major", product="PC resin RX-40", lot="R-8812",
            detected_on=days(-33)).id
        app.nonconformities.contain_nc(resin, action="Resin lot R-8812 returned to supplier",
                                       disposition="return-to-supplier")
    on(-31)
    with app.acting_as(QUALITY_MANAGER, DEMO_PASSWORD):
        app.nonconformities.assess_nc(crack, impact=4, likelihood=3, capa_required=True)
        app.nonconformities.assess_nc(resin, impact=3, likelihood=3, capa_required=True)
        app.nonconformities.assess_nc(records, impact=2, likelihood=1, capa_required=False,
                                      rationale="Certificate obtained from the calibration house "
                                                "and filed; "
                                                "TD-14 was within tolerance. Isolated filing slip.")
        app.nonconformities.close_nc(records)
        housing = app.corrective_actions.open_ca(
            title="Housing cracks at screw boss B2",
            problem="IP-200 housings crack at boss B2 within weeks of assembly (COMP-2026-0142, "
                    "resin lot R-8812).",
            owner=ACTION_OWNER, ncs=[crack, resin]).id
    on(-30)
    with app.acting_as(ACTION_OWNER, DEMO_PASSWORD):
        app.corrective_actions.investigate_ca(
                               housing, method="5-whys", category="machine",
                               whys=["The boss cracks under screw torque",
                                     "Hoop stress at the boss exceeds the material's limit",
                                     "Wall thickness at the boss is below drawing minimum",
                                     "The mould gate insert is worn and short-shots the boss"],
                               root_cause="Worn gate insert on mould M-17 gives thin boss walls")
    on(-29)
    with app.acting_as(ACTION_OWNER, DEMO_PASSWORD):
        app.corrective_actions.plan_ca(housing, action="Sort and scrap housings from lot L2311",
                                       assignee=TECHNICIAN,
                                       due=days(-25), action_type="correction")
        app.corrective_actions.plan_ca(housing, action="Replace gate insert on mould M-17",
                                       assignee=ACTION_OWNER,
                                       due=days(-18), action_type="corrective")
        app.corrective_actions.plan_check(
            housing, criteria="No cracked bosses in 3 consecutive lots built after the change",
            method="100% visual inspection at final test; boss wall thickness on 5 per lot",
            due=days(-17))
    on(-28)
    with app.acting_as(QUALITY_MANAGER, DEMO_PASSWORD):
        app.corrective_actions.approve_ca(housing)
    on(-25)
    with app.acting_as(TECHNICIAN, DEMO_PASSWORD):
        app.corrective_actions.complete_action(housing, "A1",
                                               note="312 housings sorted, 27 scrapped")
    on(-20)
    with app.acting_as(QUALITY_ENGINEER, DEMO_PASSWORD):
        inspection = app.nonconformities.raise_nc(
            title="Complaint files lack documented investigation decision",
            description="FDA Form 483 observation 2: complaint files do not document the "
                        "decision not to investigate.",
            source="regulatory-inspection", severity="major",
            external_ref="FDA 483 obs. 2", detected_on=days(-20)).id
    on(-19)
    with app.acting_as(QUALITY_MANAGER, DEMO_PASSWORD):
        app.nonconformities.assess_nc(inspection, impact=3, likelihood=4, capa_required=True)
        complaints = app.corrective_actions.open_ca(
            title="Complaint investigation decisions not documented",
            problem="Complaint files lack the documented decision required by 820.198.",
            owner=QUALITY_ENGINEER, ncs=[inspection]).id
    with app.acting_as(ACTION_OWNER, DEMO_PASSWORD):
        app.corrective_actions.complete_action(housing, "A2",
                                               note="Insert replaced; first-article wall 1.52 mm")
    on(-18)
    with app.acting_as(QUALITY_ENGINEER, DEMO_PASSWORD):
        app.corrective_actions.investigate_ca(
                               complaints, method="fault-tree", category="method",
                               root_cause="Complaint SOP-12 has no field for the no-investigation "
                                          "decision")
    on(-17)
    with app.acting_as(VERIFIER, DEMO_PASSWORD):
        app.corrective_actions.verify_ca(housing, effective=False,
                                         note="Two cracked bosses found in lot L2402 built after "
                                              "the change: "
                                              "the root cause was not fully addressed.")
    on(-16)
    with app.acting_as(QUALITY_ENGINEER, DEMO_PASSWORD):
        app.corrective_actions.plan_ca(complaints, action="Revise SOP-12 and the complaint form",
                                       assignee=QUALITY_ENGINEER, due=days(-3),
                                       action_type="corrective")
    on(-15)
    with app.acting_as(ACTION_OWNER, DEMO_PASSWORD):
        app.corrective_actions.investigate_ca(
                               housing, method="ishikawa", category="material",
                               root_cause="Resin moisture above 0.02 % at moulding weakens the "
                                          "boss; the dryer "
                                          "residence time is not controlled")
        app.corrective_actions.plan_ca(housing,
                                       action="Add resin moisture check before each moulding run",
                                       assignee=TECHNICIAN, due=days(-8), action_type="corrective")
        app.corrective_actions.plan_ca(housing,
                                       action="Add dryer residence time to the moulding PFMEA and "
                                              "control plan for all moulded parts",
                                       assignee=ACTION_OWNER, due=days(-6),
                                       action_type="preventive")
        app.corrective_actions.plan_check(
            housing, criteria="No cracked bosses in 6 consecutive lots; boss wall thickness "
                              "Cpk of at least 1.33",
            method="100% visual inspection at final test; wall thickness on 5 per lot",
            due=days(-5))
    with app.acting_as(QUALITY_MANAGER, DEMO_PASSWORD):
        app.corrective_actions.approve_ca(complaints)
    on(-14)
    with app.acting_as(QUALITY_MANAGER, DEMO_PASSWORD):
        app.corrective_actions.approve_ca(housing)
    on(-9)
    with app.acting_as(TECHNICIAN, DEMO_PASSWORD), TemporaryDirectory() as folder:
        record = Path(folder) / "moisture-check-record.csv"
        record.write_text("run,moisture_pct\n1,0.012\n2,0.011\n3,0.014\n", encoding="utf-8")
        app.corrective_actions.complete_action(housing, "A3",
                                               note="Moisture check in work instruction WI-220 "
                                                    "rev C; first three runs recorded",
                                               evidence=[record])
    on(-7)
    with app.acting_as(ACTION_OWNER, DEMO_PASSWORD):
        app.corrective_actions.complete_action(housing, "A4",
                                               note="PFMEA PF-031 rev F and control plan updated")
    on(-5)
    with app.acting_as(VERIFIER, DEMO_PASSWORD):
        app.corrective_actions.verify_ca(housing, effective=True,
                                         note="Six lots, 2,400 units since the change: no cracks; "
                                              "boss wall "
                                              "thickness Cpk 1.8")
    with app.acting_as(ACTION_OWNER, DEMO_PASSWORD):
        app.corrective_actions.assess_impact(
            housing, statement="The moisture check and the dryer residence time add process "
                               "controls only: the housing's design, material and validated "
                               "moulding window are unchanged, so safety, performance and "
                               "regulatory compliance are not affected",
            risk_file="RMF-017 rev 5 (process FMEA PF-031 rev F)",
            changes=["WI-220 rev C", "PF-031 rev F", "CP-031 rev D"],
            training=["TR-2026-118 moulding operators on WI-220 rev C"])
    on(-4)
    with app.acting_as(QUALITY_MANAGER, DEMO_PASSWORD):
        app.corrective_actions.close_ca(housing)
        app.corrective_actions.extend_action(complaints, "A1", due=days(-1),
                                             reason="Form change needs the document-control board "
                                                    "of the 20th")
    on(-2)
    with app.acting_as(QUALITY_ENGINEER, DEMO_PASSWORD):
        seal = app.nonconformities.raise_nc(
            title="Seal strength below limit on pouch line 3",
            description="12 of 50 sampled pouches below 8 N peel strength at start of shift.",
            source="process", severity="critical", product="Sterile pouch P-10", lot="L2407",
            detected_on=days(-2)).id
        app.nonconformities.contain_nc(seal, action="Line 3 stopped; shift output on hold",
                                       disposition="quarantine")
    on(-1)
    # The monthly audit-trail review by exception, signed (EU GMP Annex 11 §9).
    with app.acting_as(QUALITY_MANAGER, DEMO_PASSWORD):
        app.reviews.sign_trail_review(days(-31), days(-2))
    return {"ca": housing, "nc_no_ca": records, "open_nc": seal, "overdue_ca": complaints}


def tour(app: CapaApplication, refs: dict[str, str]) -> tuple[Any, Any, bytes, bytes]:
    """What the demo shows of its story, read as the quality manager: the CA as it stands, its
    audit trail, the dashboard (HTML) and the CA's 8D report (PDF)."""
    with app.acting_as(QUALITY_MANAGER, DEMO_PASSWORD):
        return (app.records.show(refs["ca"]), app.records.history(refs["ca"]),
                app.queries.render_dashboard().encode("utf-8"),
                app.queries.render_report(refs["ca"], "pdf"))
