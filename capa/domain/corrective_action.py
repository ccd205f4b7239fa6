"""The corrective action record and its lifecycle (SPEC §1.2)."""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import event

from capa.domain.errors import InvalidInput, NotFound, RuleViolation
from capa.domain.record import Record, require_reason
from capa.domain.values import (
    ActionType,
    CAStatus,
    CauseCategory,
    RootCauseMethod,
    choice,
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
        self.analyses: list[dict[str, Any]] = []
        self.items: list[dict[str, Any]] = []
        self.approvals: list[dict[str, Any]] = []
        self.verifications: list[dict[str, Any]] = []
        self.closure: dict[str, Any] | None = None
        self.cancellation: dict[str, Any] | None = None

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
    def root_cause(self) -> dict[str, Any] | None:
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

    def approve(self, signature: dict[str, Any]) -> None:
        self._require_status("approve", CAStatus.PLANNED)
        self._refuse_owner(signature["user_id"], "approve the plan of")
        self._approved(signature=signature)

    @event("PlanApproved")
    def _approved(self, signature: dict[str, Any]) -> None:
        self.approvals.append(
            {"iteration": self.iteration, "voided": False,
             "signature": {**signature, "signed_at": self.event_time}}
        )
        self.status = CAStatus.APPROVED.value

    def item(self, number: str) -> dict[str, Any]:
        for item in self.items:
            if item["number"] == number.upper():
                return item
        raise NotFound(f"{self.ref} has no action item {number}")

    def complete(self, number: str, note: str, evidence: list[dict[str, Any]], *,
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
    def _action_completed(self, number: str, note: str, evidence: list[dict[str, Any]]) -> None:
        self._mark_done(number, note, evidence, self.event_actor)

    @event("ActionItemCompletedOnBehalf")
    def _action_completed_on_behalf(self, number: str, note: str,
                                    evidence: list[dict[str, Any]], done_by: str,
                                    reason: str) -> None:
        item = self._mark_done(number, note, evidence, done_by)
        item.update(recorded_by=self.event_actor, on_behalf_reason=reason)

    def _mark_done(self, number: str, note: str, evidence: list[dict[str, Any]],
                   done_by: str) -> dict[str, Any]:
        item = self.item(number)
        item.update(state="done", note=note, evidence=evidence, completed_by=done_by,
                    completed_at=self.event_time)
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

    # -- effectiveness and closure -------------------------------------------------------

    def verify(
        self, effective: bool, note: str, evidence: list[dict[str, Any]],
        signature: dict[str, Any],
    ) -> None:
        self._require_status("verify the effectiveness of", CAStatus.IMPLEMENTED)
        verifier = signature["user_id"]
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
        text = require_text(note, "verification note")
        if effective:
            self._effectiveness_verified(note=text, evidence=evidence, signature=signature)
        else:
            self._verified_not_effective(note=text, evidence=evidence, signature=signature)

    def _record_verification(
        self, effective: bool, note: str, evidence: list[dict[str, Any]],
        signature: dict[str, Any],
    ) -> None:
        self.verifications.append(
            {"iteration": self.iteration, "effective": effective, "note": note,
             "evidence": evidence, "signature": {**signature, "signed_at": self.event_time}}
        )

    @event("EffectivenessVerified")
    def _effectiveness_verified(
        self, note: str, evidence: list[dict[str, Any]], signature: dict[str, Any]
    ) -> None:
        self._record_verification(True, note, evidence, signature)
        self.status = CAStatus.VERIFIED.value

    @event("EffectivenessNotVerified")
    def _verified_not_effective(
        self, note: str, evidence: list[dict[str, Any]], signature: dict[str, Any]
    ) -> None:
        self._record_verification(False, note, evidence, signature)
        # The failed actions stay in history; a new iteration needs a new analysis and plan.
        self.iteration += 1
        self.status = CAStatus.INVESTIGATED.value

    def close(self, signature: dict[str, Any], closing_ncs: list[str]) -> None:
        if self.status in (CAStatus.IMPLEMENTED, CAStatus.APPROVED, CAStatus.PLANNED,
                           CAStatus.INVESTIGATED, CAStatus.OPEN):
            raise RuleViolation(
                "R4", f"{self.ref} closes only after its effectiveness was verified "
                f"(it is {self.status})"
            )
        self._require_status("close", CAStatus.VERIFIED)
        self._refuse_owner(signature["user_id"], "close")
        self._closed(signature=signature, closed_ncs=list(closing_ncs))

    @event("Closed")
    def _closed(self, signature: dict[str, Any], closed_ncs: list[str]) -> None:
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
