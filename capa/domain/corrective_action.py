"""The corrective action record and its lifecycle (SPEC §1.2), with its planned effectiveness
checks and impact assessments (SPEC §12).

Size: one aggregate's lifecycle; its rules (R2–R7, R11) check state that only it holds."""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import event

from capa.domain.errors import InvalidInput, NotFound, RuleViolation
from capa.domain.parts import (
    ActionItem,
    Analysis,
    Approval,
    CAClosure,
    Cancellation,
    Check,
    EvidenceRef,
    Impact,
    Signature,
    Verification,
)
from capa.domain.record import Record, require_reason
from capa.domain.values import (
    ActionType,
    CAStatus,
    CauseCategory,
    CheckOutcome,
    RootCauseMethod,
    choice,
    optional_line,
    require_line,
    require_text,
)


def past_due_accepted(due: str, today: str | None, reason: str | None) -> str | None:
    """The reason for accepting a due date before `today`, or None when the date is not past;
    a past date without a reason is refused (R5 family: a due date is a commitment, and one
    already missed when it is set hides lateness from the overdue view)."""
    if today is None or due >= today:
        return None
    text = (reason or "").strip()
    if reason is None:
        raise RuleViolation("R5", f"the due date {due} is in the past (today is {today}); "
                                  "choose a later date, or accept it with --allow-past-due "
                                  "--reason TEXT")
    if not text:
        raise RuleViolation("R5", f"accepting the past due date {due} needs a reason")
    return text


class CorrectiveAction(Record):
    """A CA: root cause, a plan of action items, approval, implementation, effectiveness."""

    @classmethod
    def open_new(
        cls, *, ref: str, title: str, problem: str, owner: str, linked_ncs: list[str]
    ) -> CorrectiveAction:
        return cls(
            ref=ref,
            title=require_line(title, "title"),
            problem=require_text(problem, "problem statement"),
            owner=require_text(owner, "owner"),
            linked_ncs=list(linked_ncs),
        )

    @event("Opened")
    def __init__(
        self, ref: str, title: str, problem: str, owner: str, linked_ncs: list[str]
    ) -> None:
        self.ref = ref
        self.title = title
        self.problem = problem
        self.owner = owner
        self.linked_ncs = list(linked_ncs)
        self.status = CAStatus.OPEN.value
        self.iteration = 1
        self.analyses: list[Analysis] = []
        self.items: list[ActionItem] = []
        self.approvals: list[Approval] = []
        self.verifications: list[Verification] = []
        self.closure: CAClosure | None = None
        self.cancellation: Cancellation | None = None

    def link_nc(self, nc_ref: str) -> None:
        self._require_active("link a nonconformity to")
        if nc_ref not in self.linked_ncs:
            self._nc_linked(nc=nc_ref)

    @event("NonconformityLinked")
    def _nc_linked(self, nc: str) -> None:
        self.linked_ncs.append(nc)

    # -- investigation and planning ------------------------------------------------------

    def investigate(
        self, method: str, root_cause: str, category: str, whys: list[str] | None = None
    ) -> None:
        self._require_status("investigate", CAStatus.OPEN, CAStatus.INVESTIGATED)
        chosen = choice(RootCauseMethod, method, "root-cause method")
        why_chain = [w.strip() for w in (whys or []) if w.strip()]
        if chosen is RootCauseMethod.FIVE_WHYS and not why_chain:
            raise InvalidInput("a 5-whys analysis needs at least one why")
        self._investigated(
            method=chosen.value,
            root_cause=require_text(root_cause, "root cause"),
            category=choice(CauseCategory, category, "cause category").value,
            whys=why_chain,
        )

    @event("RootCauseAnalysed")
    def _investigated(self, method: str, root_cause: str, category: str, whys: list[str]) -> None:
        self.analyses.append(
            {"method": method, "whys": whys, "root_cause": root_cause, "category": category,
             "iteration": self.iteration, "by": self.event_actor, "at": self.event_time}
        )
        self.status = CAStatus.INVESTIGATED.value

    @property
    def root_cause(self) -> Analysis | None:
        """The current analysis: the latest one; all earlier ones stay in `analyses`."""
        return self.analyses[-1] if self.analyses else None

    def plan(self, text: str, assignee: str, due: str, action_type: str, *,
             today: str | None = None, past_due_reason: str | None = None) -> str:
        """Add an action item. Given `today`, a due date before it is refused (R5) unless a
        reason for accepting it is given; the reason is kept in the event."""
        self._require_status(
            "plan", CAStatus.INVESTIGATED, CAStatus.PLANNED, CAStatus.APPROVED
        )
        if self.iteration > 1 and not any(a["iteration"] == self.iteration
                                          for a in self.analyses):
            # The actions of the last iteration did not work: their root cause is re-examined
            # (confirmed or replaced) before anything new is planned (ISO 9001 10.2.1 b, d).
            raise RuleViolation(
                "R7", f"{self.ref} iteration {self.iteration} needs a root-cause analysis before "
                "planning: the actions of the last iteration were not effective")
        number = f"A{len(self.items) + 1}"
        fields: dict[str, str] = {
            "number": number,
            "text": require_text(text, "action text"),
            "assignee": require_text(assignee, "assignee"),
            "due": due,
            "action_type": choice(ActionType, action_type, "action type").value,
        }
        reason = past_due_accepted(due, today, past_due_reason)
        if reason is not None:
            # Only a date that is in fact past carries a reason: older events have none.
            fields["reason"] = reason
        self._action_planned(**fields)
        return number

    @event("ActionItemPlanned")
    def _action_planned(
        self, number: str, text: str, assignee: str, due: str, action_type: str,
        reason: str | None = None,
    ) -> None:
        self.items.append(
            {"number": number, "text": text, "assignee": assignee, "due": due,
             "type": action_type, "state": "open", "iteration": self.iteration,
             "planned_by": self.event_actor, "planned_at": self.event_time,
             "note": None, "evidence": [], "completed_by": None, "completed_at": None,
             "extensions": []}
        )
        if reason is not None:
            self.items[-1]["past_due_reason"] = reason
        if self.status == CAStatus.APPROVED:
            # A plan that grows after approval is no longer the plan that was approved.
            for approval in self.approvals:
                if approval["iteration"] == self.iteration and not approval["voided"]:
                    approval["voided"] = True
        self.status = CAStatus.PLANNED.value

    # -- approval and implementation -----------------------------------------------------

    def approve(self, signature: Signature) -> None:
        self._require_status("approve", CAStatus.PLANNED)
        self._refuse_owner(signature["user_id"], "approve the plan of")
        self._approved(signature=signature)

    @event("PlanApproved")
    def _approved(self, signature: Signature) -> None:
        self.approvals.append(
            {"iteration": self.iteration, "voided": False,
             "signature": {**signature, "signed_at": self.event_time}}
        )
        self.status = CAStatus.APPROVED.value

    def item(self, number: str) -> ActionItem:
        for item in self.items:
            if item["number"] == number.upper():
                return item
        raise NotFound(f"{self.ref} has no action item {number}")

    def complete(self, number: str, note: str, evidence: list[EvidenceRef], *,
                 done_by: str | None = None, reason: str | None = None) -> None:
        """Mark an item done. With `done_by`, the acting user records the completion for the
        one who did the work, and says why (the event keeps both people and the reason)."""
        self._require_status("complete an action of", CAStatus.APPROVED)
        item = self.item(number)
        if item["state"] != "open":
            raise RuleViolation("R7", f"action {item['number']} of {self.ref} is already done")
        text = require_text(note, "completion note")
        if done_by is None:
            self._action_completed(number=item["number"], note=text, evidence=evidence)
            return
        why = (reason or "").strip()
        if not why:
            raise RuleViolation("R8", f"recording {item['number']} of {self.ref} on behalf of "
                                      f"{done_by} needs a reason (--reason)")
        self._action_completed_on_behalf(number=item["number"], note=text, evidence=evidence,
                                         done_by=done_by, reason=why)

    @event("ActionItemCompleted")
    def _action_completed(self, number: str, note: str, evidence: list[EvidenceRef]) -> None:
        self._mark_done(number, note, evidence, self.event_actor)

    @event("ActionItemCompletedOnBehalf")
    def _action_completed_on_behalf(self, number: str, note: str,
                                    evidence: list[EvidenceRef], done_by: str,
                                    reason: str) -> None:
        item = self._mark_done(number, note, evidence, done_by)
        item["recorded_by"] = self.event_actor
        item["on_behalf_reason"] = reason

    def _mark_done(self, number: str, note: str, evidence: list[EvidenceRef],
                   done_by: str) -> ActionItem:
        item = self.item(number)
        item["state"], item["note"], item["evidence"] = "done", note, evidence
        item["completed_by"], item["completed_at"] = done_by, self.event_time
        if all(i["state"] == "done" for i in self.items):
            self.status = CAStatus.IMPLEMENTED.value
        return item

    def extend(self, number: str, due: str, reason: str, *, today: str | None = None,
               allow_past_due: bool = False) -> None:
        """Move a due date later (R5). Given `today`, a new date before it is refused unless
        `allow_past_due`; the extension's reason then also accounts for the past date."""
        self._require_status("extend an action of", CAStatus.APPROVED)
        item = self.item(number)
        if item["state"] != "open":
            raise RuleViolation("R5", f"action {item['number']} of {self.ref} is already done")
        if due <= item["due"]:
            raise RuleViolation(
                "R5", f"the new due date {due} must be later than the current one {item['due']}"
            )
        text = (reason or "").strip()
        if not text:
            raise RuleViolation("R5", "a due-date extension needs a reason")
        past_due_accepted(due, today, text if allow_past_due else None)
        self._due_date_extended(number=item["number"], old_due=item["due"], new_due=due,
                                reason=text)

    @event("DueDateExtended")
    def _due_date_extended(self, number: str, old_due: str, new_due: str, reason: str) -> None:
        item = self.item(number)
        item["extensions"].append(
            {"from": old_due, "to": new_due, "reason": reason, "by": self.event_actor,
             "at": self.event_time}
        )
        item["due"] = new_due

    # -- effectiveness checks planned up front (SPEC §12) ------------------------------
    #
    # `checks` and `impacts` exist only once one is recorded: a record of an earlier release
    # folds to exactly the state its signatures bound (Record.content_digest).

    @property
    def checks(self) -> list[Check]:
        """Every planned effectiveness check, of every iteration, in the order planned."""
        found: list[Check] = self.__dict__.get("checks", [])
        return found

    @property
    def current_check(self) -> Check | None:
        """The effectiveness check planned for the current iteration, if any (the latest one:
        a re-planned check replaces the earlier one, which stays in `checks`)."""
        found = [c for c in self.checks if c["iteration"] == self.iteration]
        return found[-1] if found else None

    def plan_check(self, criteria: str, due: str, method: str | None = None, *,
                   today: str | None = None, reason: str | None = None) -> None:
        """Say up front what will prove the actions effective, how, and by when. A check
        already planned for this iteration is replaced only with a reason: criteria changed
        after the results are in would prove nothing."""
        self._require_status("plan the effectiveness check of", CAStatus.OPEN,
                             CAStatus.INVESTIGATED, CAStatus.PLANNED, CAStatus.APPROVED,
                             CAStatus.IMPLEMENTED)
        text = require_text(criteria, "criteria")
        how = optional_line(method, "method")
        if today is not None and due < today:
            raise RuleViolation("R5", f"the check's due date {due} is in the past (today is "
                                      f"{today}); choose today or a later date")
        why = (reason or "").strip()
        current = self.current_check
        if current is not None and not why:
            raise RuleViolation(
                "R6", f"{self.ref} iteration {self.iteration} already has a planned "
                      f"effectiveness check (due {current['due']}); replacing it needs a "
                      "reason (--reason)")
        fields: dict[str, Any] = {"criteria": text, "due": due, "method": how}
        if why:
            fields["reason"] = why
        self._check_planned(**fields)

    @event("EffectivenessCheckPlanned")
    def _check_planned(self, criteria: str, due: str, method: str | None,
                       reason: str | None = None) -> None:
        checks = self.__dict__.setdefault("checks", [])
        for earlier in checks:
            if earlier["iteration"] == self.iteration and earlier["state"] == "planned":
                earlier["state"] = "replaced"
        check: Check = {
            "iteration": self.iteration, "criteria": criteria, "method": method, "due": due,
            "state": "planned", "planned_by": self.event_actor, "planned_at": self.event_time,
            "extensions": []}
        if reason is not None:
            check["reason"] = reason
        checks.append(check)

    # -- R11: the actions do no harm (ISO 13485 8.5.2 e) ------------------------------------

    @property
    def impacts(self) -> list[Impact]:
        """Every impact assessment recorded, of every iteration."""
        found: list[Impact] = self.__dict__.get("impacts", [])
        return found

    @property
    def current_impact(self) -> Impact | None:
        found = [i for i in self.impacts if i["iteration"] == self.iteration]
        return found[-1] if found else None

    def assess_impact(self, statement: str, risk_file: str | None = None,
                      changes: list[str] | None = None,
                      training: list[str] | None = None) -> None:
        """Record that the actions of this iteration do not adversely affect safety,
        performance or regulatory compliance, with the references that show it (R11)."""
        self._require_status("record the impact assessment of", CAStatus.INVESTIGATED,
                             CAStatus.PLANNED, CAStatus.APPROVED, CAStatus.IMPLEMENTED,
                             CAStatus.VERIFIED)
        self._impact_assessed(
            statement=require_text(statement, "impact statement"),
            risk_file=optional_line(risk_file, "risk file reference"),
            changes=_references(changes, "document change reference"),
            training=_references(training, "training reference"))

    @event("ImpactAssessed")
    def _impact_assessed(self, statement: str, risk_file: str | None, changes: list[str],
                         training: list[str]) -> None:
        self.__dict__.setdefault("impacts", []).append(
            {"iteration": self.iteration, "statement": statement, "risk_file": risk_file,
             "changes": changes, "training": training, "by": self.event_actor,
             "at": self.event_time})

    # -- effectiveness and closure -------------------------------------------------------

    def verify(
        self, effective: bool, note: str, evidence: list[EvidenceRef],
        signature: Signature,
    ) -> None:
        self._require_status("verify the effectiveness of", CAStatus.IMPLEMENTED)
        self._require_independent(signature["user_id"])
        text = require_text(note, "verification note")
        if effective:
            self._effectiveness_verified(note=text, evidence=evidence, signature=signature)
        else:
            self._verified_not_effective(note=text, evidence=evidence, signature=signature)

    def inconclusive(self, note: str, evidence: list[EvidenceRef], signature: Signature,
                     due: str, reason: str) -> None:
        """The planned check could not decide yet: it is extended to a later date, with a
        reason, and the CA stays implemented (SPEC §12)."""
        check = self.check_extendable(signature["user_id"], due, reason)
        self._inconclusive(note=require_text(note, "verification note"), evidence=evidence,
                           signature=signature, old_due=check["due"], new_due=due,
                           reason=(reason or "").strip())

    def check_extendable(self, verifier: str, due: str, reason: str | None) -> Check:
        """The current check, which `verifier` may extend to `due` for `reason`; refused as
        `inconclusive` would refuse it (checked before anyone signs)."""
        self._require_status("record an inconclusive check of", CAStatus.IMPLEMENTED)
        self._require_independent(verifier)
        check = self.current_check
        if check is None:
            raise RuleViolation(
                "R7", f"{self.ref} has no planned effectiveness check to extend; plan one "
                      "with capa ca plan-check")
        if due <= check["due"]:
            raise RuleViolation("R5", f"the check's new due date {due} must be later than the "
                                      f"current one {check['due']}")
        if not (reason or "").strip():
            raise RuleViolation("R5", "extending an inconclusive check needs a reason "
                                      "(--reason)")
        return check

    @event("EffectivenessInconclusive")
    def _inconclusive(self, note: str, evidence: list[EvidenceRef],
                      signature: Signature, old_due: str, new_due: str,
                      reason: str) -> None:
        check = self.current_check
        assert check is not None
        check["extensions"].append(
            {"from": old_due, "to": new_due, "reason": reason, "note": note,
             "evidence": evidence, "signature": {**signature, "signed_at": self.event_time}})
        check["due"] = new_due

    def _require_independent(self, verifier: str) -> None:
        # R3 (SPEC §9.6): whoever carried an action out cannot judge it; that is the item's
        # assignee as well as whoever recorded its completion, and always the CA's owner, who
        # answers for every action of the plan.
        if verifier == self.owner:
            raise RuleViolation("R3", f"{verifier} owns {self.ref} and cannot verify its "
                                      "effectiveness")
        implemented = sorted({i["number"] for i in self.items
                              if verifier in (i["completed_by"], i["assignee"],
                                              i.get("recorded_by"))})
        if implemented:
            raise RuleViolation(
                "R3", f"{verifier} implemented {', '.join(implemented)} of {self.ref} (as "
                "assignee or by recording the completion) and cannot verify its effectiveness",
            )

    def _record_verification(
        self, effective: bool, note: str, evidence: list[EvidenceRef],
        signature: Signature,
    ) -> None:
        self.verifications.append(
            {"iteration": self.iteration, "effective": effective, "note": note,
             "evidence": evidence, "signature": {**signature, "signed_at": self.event_time}}
        )
        check = self.current_check
        if check is not None:
            # The verification answers the check planned for it (present only when planned).
            check["state"] = (CheckOutcome.EFFECTIVE if effective
                              else CheckOutcome.NOT_EFFECTIVE).value
            self.verifications[-1]["criteria"] = check["criteria"]

    @event("EffectivenessVerified")
    def _effectiveness_verified(
        self, note: str, evidence: list[EvidenceRef], signature: Signature
    ) -> None:
        self._record_verification(True, note, evidence, signature)
        self.status = CAStatus.VERIFIED.value

    @event("EffectivenessNotVerified")
    def _verified_not_effective(
        self, note: str, evidence: list[EvidenceRef], signature: Signature
    ) -> None:
        self._record_verification(False, note, evidence, signature)
        # The failed actions stay in history; a new iteration needs a new analysis and plan.
        self.iteration += 1
        self.status = CAStatus.INVESTIGATED.value

    def close(self, signature: Signature, closing_ncs: list[str], *,
              impact_required: bool = False) -> None:
        """Close a verified CA (R4). `impact_required` (a store of the iso13485 profile): only
        once this iteration's impact assessment is recorded (R11)."""
        self.check_closable(impact_required=impact_required)
        self._refuse_owner(signature["user_id"], "close")
        self._closed(signature=signature, closed_ncs=list(closing_ncs))

    def check_closable(self, *, impact_required: bool = False) -> None:
        """Refuse, before anyone signs, a close that R4 or R11 would refuse."""
        if self.status in (CAStatus.IMPLEMENTED, CAStatus.APPROVED, CAStatus.PLANNED,
                           CAStatus.INVESTIGATED, CAStatus.OPEN):
            raise RuleViolation(
                "R4", f"{self.ref} closes only after its effectiveness was verified "
                f"(it is {self.status})"
            )
        self._require_status("close", CAStatus.VERIFIED)
        if impact_required and self.current_impact is None:
            raise RuleViolation(
                "R11", f"{self.ref} closes only after recording that its actions do not "
                       "adversely affect safety, performance or regulatory compliance "
                       f"(ISO 13485 8.5.2 e): capa ca impact {self.ref} --statement TEXT")

    @event("Closed")
    def _closed(self, signature: Signature, closed_ncs: list[str]) -> None:
        self.closure = {"closed_ncs": closed_ncs,
                        "signature": {**signature, "signed_at": self.event_time}}
        self.status = CAStatus.CLOSED.value

    # -- migration from a legacy register -------------------------------------------------

    def migrate(self, provenance: dict[str, Any], legacy: dict[str, Any], status: str,
                reason: str) -> None:
        """The CA a legacy row gave, in its legacy state (SPEC §10). `legacy` holds its root
        cause, action, owner, opened and closed dates and effectiveness as the register had
        them; the steps themselves happened in the legacy system, so no analysis, plan or
        signature is made up here."""
        if self.version != 1 or getattr(self, "migration", None) is not None:
            raise RuleViolation("R7", f"{self.ref} was not just opened; it cannot be migrated")
        if status not in (CAStatus.OPEN, CAStatus.CLOSED, CAStatus.CANCELLED):
            raise InvalidInput(f"legacy status must be open, closed or cancelled (got {status!r})")
        self._migrated(provenance=provenance, legacy=legacy, legacy_status=status,
                       reason=reason)

    class Migrated(Record.Event):
        """Imported from a legacy register with the NC it belongs to (see
        Nonconformity.Migrated)."""

        class_version = 1
        provenance: dict[str, Any]
        legacy: dict[str, Any]
        legacy_status: str
        reason: str

    @event(Migrated)
    def _migrated(self, provenance: dict[str, Any], legacy: dict[str, Any], legacy_status: str,
                  reason: str) -> None:
        self.migration = {"note": reason, **provenance, **legacy,
                          "legacy_status": legacy_status, "by": self.event_actor,
                          "at": self.event_time}
        if legacy_status == CAStatus.CANCELLED:
            self.cancellation = {"by": self.event_actor, "at": self.event_time,
                                 "reason": reason}
        # A closed legacy CA keeps `closure` empty: that field holds a capa signature.
        self.status = legacy_status

    # -- corrections ---------------------------------------------------------------------

    def cancel(self, reason: str) -> None:
        self._require_active("cancel")
        self._cancelled(reason=require_reason(reason, "cancelling"))

    @event("Cancelled")
    def _cancelled(self, reason: str) -> None:
        self.cancellation = {"by": self.event_actor, "at": self.event_time, "reason": reason}
        self.status = CAStatus.CANCELLED.value

    def reopen(self, reason: str) -> None:
        self._require_status("reopen", CAStatus.CLOSED, CAStatus.CANCELLED)
        self._reopened(reason=require_reason(reason, "reopening"))

    @event("Reopened")
    def _reopened(self, reason: str) -> None:
        self.closure = None
        self.cancellation = None
        self.status = CAStatus.INVESTIGATED.value

    def _refuse_owner(self, user: str, what: str) -> None:
        if user == self.owner:
            raise RuleViolation("R2", f"{user} owns {self.ref} and cannot {what} it")


def _references(values: list[str] | None, what: str) -> list[str]:
    """One-line references (document changes, training records), blanks dropped, each once."""
    found = (optional_line(v, what) for v in values or [])
    return list(dict.fromkeys(v for v in found if v is not None))
