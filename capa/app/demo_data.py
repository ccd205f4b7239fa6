"""A year of demo history: a few hundred NCs across sources, products and months, taken in through
the bulk import path, and corrective actions left at every stage of their lifecycle, so that the
lists, overdue view and dashboard of the demo store have something to show.

The texts are written for this project; nothing here reads data from outside the package.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from capa.app.demo import PAST_DUE_REASON
from capa.app.service import CapaApplication

#: (title, description, source, product, cause category of its eventual CA)
SCENARIOS: tuple[tuple[str, str, str, str, str], ...] = (
    ("Seal strength below limit", "Peel test below 8 N on {n} of 50 sampled pouches.",
     "process", "Sterile pouch P-10", "machine"),
    ("Housing crack at screw boss", "Hairline crack at boss B{n} found after assembly.",
     "customer-complaint", "IP-200 housing", "material"),
    ("Label shows wrong lot number", "Printed lot differs from the traveller on {n} cartons.",
     "internal-audit", "Carton label C-4", "method"),
    ("Resin melt-flow out of specification", "Incoming MFI {n}.4 g/10 min, 10-12 specified.",
     "supplier", "PC resin RX-40", "material"),
    ("Torque driver overdue for calibration", "Driver TD-{n} used 9 days past its due date.",
     "internal-audit", "Assembly cell 2", "measurement"),
    ("Particulate on tubing set", "{n} particles above 50 um seen at final inspection.",
     "product", "Tubing set T-7", "environment"),
    ("Operator skipped leak test step", "Traveller shows no leak test for {n} units.",
     "process", "IP-200 pump", "man"),
    ("Supplier certificate missing", "No certificate of conformance with delivery {n}.",
     "supplier", "Tubing set T-7", "method"),
    ("Complaint: alarm not audible", "User reports occlusion alarm inaudible, case {n}.",
     "customer-complaint", "IP-200 pump", "machine"),
    ("Inspection finding: CAPA records", "Observation {n}: effectiveness checks not dated.",
     "regulatory-inspection", "Quality system", "method"),
    ("Cleanroom particle count excursion", "Room 3 count {n}x the action limit at rest.",
     "external-audit", "Cleanroom 3", "environment"),
)
SEVERITIES = ("minor", "minor", "major", "major", "critical")


def demo_rows(count: int, today: dt.date, seed: int = 2026) -> list[dict[str, str]]:
    """`count` NC rows spread over the last twelve months, as a CSV reader would give them."""
    pick = random.Random(seed)
    rows = []
    for i in range(count):
        title, text, source, product, _ = SCENARIOS[i % len(SCENARIOS)]
        detected = today - dt.timedelta(days=pick.randint(1, 360))
        rows.append({"external_ref": f"DEMO-{i + 1:04d}", "title": title,
                     "description": text.format(n=pick.randint(2, 19)), "source": source,
                     "severity": pick.choice(SEVERITIES), "product": product,
                     "lot": f"L{pick.randint(2300, 2499)}",
                     "detected_on": detected.isoformat()})
    return rows


def grow_demo(app: CapaApplication, people: dict[str, str], password: str | None,
              count: int = 220) -> dict[str, Any]:
    """Import `count` NCs and walk some of them through assessment and CAs at every stage.

    `people` names who plays which part: reporter, quality, owner, technician, verifier.
    """
    today = dt.datetime.now(dt.UTC).date()

    def acting(role: str) -> Any:
        user = people[role]
        return app.acting_as(user, password) if password is not None \
            else app.acting_as(user)

    def due(days: int) -> str:
        return (today + dt.timedelta(days=days)).isoformat()

    rows = demo_rows(count, today)
    with acting("reporter"):
        report = app.import_ncs(rows, {}, header=list(rows[0]))
    first = int(str(report.first_id).rsplit("-", 1)[1])
    prefix = str(report.first_id).rsplit("-", 1)[0]
    refs = [f"{prefix}-{first + i:04d}" for i in range(report.imported)]
    stages = ("open", "investigated", "planned", "approved", "overdue", "implemented",
              "verified", "closed", "closed", "closed", "ineffective", "closed")
    cas: dict[str, str] = {}
    with acting("quality"):
        for ref in refs[:60:3]:  # a third of the early NCs need no CA; closed with a rationale
            app.assess_nc(ref, impact=1, likelihood=2, capa_required=False,
                          rationale="Isolated occurrence, corrected on the spot")
            app.close_nc(ref)
        for ref in refs[60:80:4]:
            app.contain_nc(ref, action="Affected stock quarantined", disposition="quarantine")
    for index, stage in enumerate(stages):
        # Two NCs of the same scenario per CA: same product, and the CA gives them one cause.
        group = [refs[100 + index], refs[100 + index + 2 * len(SCENARIOS)]]
        scenario = SCENARIOS[(100 + index) % len(SCENARIOS)]
        with acting("quality"):
            for ref in group:
                app.assess_nc(ref, impact=3, likelihood=3, capa_required=True)
            ca = app.open_ca(title=scenario[0], problem=f"{scenario[0]} on {scenario[3]}",
                             owner=people["owner"], ncs=group).id
        cas[stage if stage not in cas else f"{stage}-{index}"] = ca
        if stage == "open":
            continue
        with acting("owner"):
            app.investigate_ca(ca, method="ishikawa", category=scenario[4],
                               root_cause=f"{scenario[4].title()} cause of: {scenario[0]}")
        if stage == "investigated":
            continue
        late = stage == "overdue"
        with acting("owner"):
            app.plan_ca(ca, action="Correct the affected product", action_type="correction",
                        assignee=people["technician"], due=due(-12 if late else 20),
                        past_due_reason=PAST_DUE_REASON)
            app.plan_ca(ca, action="Remove the cause in the process", action_type="corrective",
                        assignee=people["technician"], due=due(-5 if late else 30),
                        past_due_reason=PAST_DUE_REASON)
        if stage == "planned":
            continue
        with acting("quality"):
            app.approve_ca(ca)
        if stage in ("approved", "overdue"):
            continue
        with acting("technician"):
            app.complete_action(ca, "A1", note="Done; records in the batch file")
            app.complete_action(ca, "A2", note="Work instruction revised and trained")
        if stage == "implemented":
            continue
        with acting("verifier"):
            app.verify_ca(ca, effective=stage != "ineffective",
                          note="Three months of data reviewed")
        if stage == "ineffective":
            continue
        if stage == "closed":
            with acting("quality"):
                app.close_ca(ca)
    return {"imported": report.imported, "cas": cas}
