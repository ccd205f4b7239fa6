"""A year of demo history: a few hundred NCs across sources, products and months, taken in through
the bulk import path, and corrective actions left at every stage of their lifecycle, so that the
lists, overdue view and dashboard of the demo store have something to show.

The texts are written for this project; nothing here reads data from outside the package.
"""

from __future__ import annotations

import datetime as dt
import random
from functools import partial
from typing import Any

from capa.app.application import CapaApplication
from capa.app.demo_clock import DemoClock

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


#: Days after its CA opens at which each step of the lifecycle happens, and how long an action
#: is given from the day it is planned (A1, A2).
STEP_DAYS = {"investigate": 6, "plan": 9, "approve": 11, "A1": 25, "A2": 38, "verify": 68,
             "close": 72}
GIVEN = (30, 45)
LATE_GIVEN = (20, 35)
#: How many days before today each stage's CA opened: closed ones across the year, the others
#: as recently as their stage makes plausible.
STAGES: tuple[tuple[str, int], ...] = (
    ("open", 3), ("investigated", 8), ("planned", 10), ("approved", 20), ("overdue", 70),
    ("implemented", 55), ("verified", 100), ("closed", 330), ("closed", 270), ("closed", 200),
    ("ineffective", 180), ("closed", 110), ("closed", 150))


def import_day(detected: dt.date, today: dt.date) -> dt.date:
    """NCs are logged in weekly batches: on the Monday after they were detected."""
    return min(detected + dt.timedelta(days=7 - detected.weekday()), today)


def grow_demo(app: CapaApplication, people: dict[str, str], password: str | None,
              clock: DemoClock, count: int = 220) -> dict[str, Any]:
    """Queue on `clock` a year of history: `count` NCs taken in weekly through the bulk import
    path, some closed without a CA, and CAs left at every stage of their lifecycle, each step at
    a plausible moment after the one before. The steps run as the clock passes them.

    `people` names who plays which part: reporter, quality, owner, technician, verifier.
    """
    today = clock.real_today

    def acting(role: str) -> Any:
        user = people[role]
        return app.acting_as(user, password) if password is not None \
            else app.acting_as(user)

    rows = demo_rows(count, today)
    detected = [dt.date.fromisoformat(r["detected_on"]) for r in rows]
    refs: dict[int, str] = {}
    result: dict[str, Any] = {"imported": 0, "cas": {}}
    batches: dict[dt.date, list[int]] = {}
    for i, day in enumerate(detected):
        batches.setdefault(import_day(day, today), []).append(i)

    def take_in(indices: list[int]) -> None:
        batch = [rows[i] for i in indices]
        with acting("reporter"):
            report = app.intake.import_ncs(batch, {}, header=list(batch[0]))
        prefix, first = str(report.first_id).rsplit("-", 1)
        for k, i in enumerate(indices):
            refs[i] = f"{prefix}-{int(first) + k:04d}"
        result["imported"] += report.imported

    def no_ca(i: int) -> None:
        with acting("quality"):
            app.nonconformities.assess_nc(refs[i], impact=1, likelihood=2, capa_required=False,
                                          rationale="Isolated occurrence, corrected on the spot")
            app.nonconformities.close_nc(refs[i])

    def contain(i: int) -> None:
        with acting("quality"):
            app.nonconformities.contain_nc(refs[i], action="Affected stock quarantined",
                                           disposition="quarantine")

    def cancel(i: int) -> None:
        with acting("quality"):
            app.nonconformities.cancel_nc(refs[i],
                                          reason="Raised twice for one complaint; see the other NC")

    for day, indices in sorted(batches.items()):
        clock.later(clock.moment(day), partial(take_in, indices))
        for i in indices:
            if i < 60 and i % 3 == 0:  # a third of the early NCs need no CA
                clock.later(clock.moment(day + dt.timedelta(days=4), 1), partial(no_ca, i))
            elif 60 <= i < 80 and i % 4 == 0:
                clock.later(clock.moment(day + dt.timedelta(days=1), 1), partial(contain, i))
            elif i in (81, 85):  # raised in error: the dashboard leaves them out
                clock.later(clock.moment(day + dt.timedelta(days=2), 2), partial(cancel, i))

    used = set(range(86))
    for index, (stage, age) in enumerate(STAGES):
        scenario_no = (100 + index) % len(SCENARIOS)
        opened = today - dt.timedelta(days=age)
        # Two NCs of the same scenario, taken in before the CA opens: same product, and the CA
        # gives them one cause (the dashboard's recurrence).
        fit = sorted((i for i in range(len(rows)) if i % len(SCENARIOS) == scenario_no
                      and i not in used and import_day(detected[i], today) < opened),
                     key=lambda i: detected[i], reverse=True)[:2]
        if len(fit) < 2:
            continue
        used.update(fit)
        _walk_ca(app, clock, acting, people, result, stage, index, opened, fit, refs)
    return result


def _walk_ca(app: CapaApplication, clock: DemoClock, acting: Any, people: dict[str, str],
             result: dict[str, Any], stage: str, index: int, opened: dt.date, group: list[int],
             refs: dict[int, str]) -> None:
    """Queue the steps of one CA, from opening to the stage it is left at."""
    scenario = SCENARIOS[group[0] % len(SCENARIOS)]
    state: dict[str, str] = {}
    order = ("investigate", "plan", "approve", "A1", "A2", "verify", "close")
    last = {"open": -1, "investigated": 0, "planned": 1, "approved": 2, "overdue": 2,
            "implemented": 4, "verified": 5, "ineffective": 5, "closed": 6}[stage]

    def open_ca() -> None:
        with acting("quality"):
            for i in group:
                app.nonconformities.assess_nc(refs[i], impact=3, likelihood=3, capa_required=True)
            state["ca"] = app.corrective_actions.open_ca(title=scenario[0],
                                                         problem=f"{scenario[0]} on {scenario[3]}",
                                                         owner=people["owner"],
                                                         ncs=[refs[i] for i in group]).id
        cas = result["cas"]
        cas[stage if stage not in cas else f"{stage}-{index}"] = state["ca"]

    def step(name: str) -> None:
        ca = state["ca"]
        if name == "investigate":
            with acting("owner"):
                app.corrective_actions.investigate_ca(ca, method="ishikawa", category=scenario[4],
                                                      root_cause=f"{scenario[4].title()} cause of: "
                                                                 f"{scenario[0]}")
        elif name == "plan":
            given = LATE_GIVEN if stage == "overdue" else GIVEN
            now = dt.datetime.now(dt.UTC).date()
            with acting("owner"):
                app.corrective_actions.plan_ca(ca, action="Correct the affected product",
                                               action_type="correction",
                                               assignee=people["technician"],
                                               due=(now + dt.timedelta(days=given[0])).isoformat())
                app.corrective_actions.plan_ca(ca, action="Remove the cause in the process",
                                               action_type="corrective",
                                               assignee=people["technician"],
                                               due=(now + dt.timedelta(days=given[1])).isoformat())
                app.corrective_actions.plan_check(
                    ca, criteria=f"No recurrence of {scenario[0].lower()} in three months",
                    method="Nonconformity and complaint data reviewed monthly",
                    due=(now + dt.timedelta(days=max(given[1], 0) + 30)).isoformat())
        elif name == "approve":
            with acting("quality"):
                app.corrective_actions.approve_ca(ca)
        elif name in ("A1", "A2"):
            with acting("technician"):
                app.corrective_actions.complete_action(ca, name,
                                                       note="Done; records in the batch file"
                                                       if name == "A1" else "Work instruction "
                                                                            "revised and trained")
        elif name == "verify":
            with acting("verifier"):
                app.corrective_actions.verify_ca(ca, effective=stage != "ineffective",
                                                 note="Three months of data reviewed")
        elif name == "close":
            with acting("owner"):
                app.corrective_actions.assess_impact(
                    ca, statement="Process controls only: the device's design, materials and "
                                  "validated processes are unchanged",
                    risk_file=f"Risk file of {scenario[3]}")
            with acting("quality"):
                app.corrective_actions.close_ca(ca)

    clock.later(clock.moment(opened, 5), open_ca)
    for name in order[:last + 1]:
        clock.later(clock.moment(opened + dt.timedelta(days=STEP_DAYS[name]), 5),
                    partial(step, name))
