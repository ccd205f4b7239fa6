"""Corrective actions (SPEC §4): opened for assessed NCs, investigated, planned, approved,
their action items completed or extended, their effectiveness check planned and verified, their
impact assessed (R11), closed with their NCs (R4), cancelled and reopened."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from capa.app.core import Core, WriteResult, today
from capa.app.evidence import evidence_files
from capa.app.operations import operation
from capa.app.permissions import allowed_roles, permits
from capa.app.signing import Signing
from capa.domain.corrective_action import CorrectiveAction
from capa.domain.errors import InvalidInput, NotFound, NotPermitted, RuleViolation
from capa.domain.nonconformity import Nonconformity
from capa.domain.user import is_user_id
from capa.domain.values import CAStatus, NCStatus, Profile, SignatureMeaning, parse_date


class CorrectiveActions:
    """The corrective action operations on the core's store."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.signing = Signing(core)

    @operation("ca open")
    def open_ca(
        self, *, title: str, problem: str, owner: str, ncs: Sequence[str] = ()
    ) -> WriteResult:
        core = self.core
        owner = self._worker("owner", owner, "ca investigate", "investigate or plan the CA")
        nc_refs = list(dict.fromkeys(core.canonical(r, "NC") for r in ncs))
        linked = [core.load(Nonconformity, r) for r in nc_refs]
        for nc in linked:
            if nc.status != NCStatus.ASSESSED or not nc.capa_required:
                raise RuleViolation(
                    "R7", f"{nc.ref} must be assessed as needing a corrective action before one "
                    f"is opened for it (it is {nc.status})"
                )
        holder: list[Nonconformity] = []

        def build(ref: str) -> CorrectiveAction:
            holder.clear()
            ca = CorrectiveAction.open_new(
                ref=ref, title=title, problem=problem, owner=owner, linked_ncs=nc_refs
            )
            for r in nc_refs:
                nc = core.load(Nonconformity, r)
                nc.link(ref)
                holder.append(nc)
            return ca

        ca = core.create("CA", build, companions=holder)
        return WriteResult(ca.ref, ca.status, ca.version, {"linked_ncs": nc_refs})

    @operation("ca investigate")
    def investigate_ca(
        self, ref: str, *, method: str, root_cause: str, category: str,
        whys: Sequence[str] = (),
    ) -> WriteResult:
        def change(ca: CorrectiveAction) -> None:
            self._require_owner_or_quality(ca, "investigate")
            ca.investigate(method, root_cause, category, list(whys))

        return self.core.update(CorrectiveAction, ref, change)

    @operation("ca plan")
    def plan_ca(
        self, ref: str, *, action: str, assignee: str, due: str, action_type: str,
        past_due_reason: str | None = None,
    ) -> WriteResult:
        """Add an action item; a due date before today (UTC) needs `past_due_reason` (R5)."""
        due_date = parse_date(due, "due").isoformat()
        day = today()
        numbers: list[str] = []

        worker = self._worker("assignee", assignee, "ca complete", "complete the action")

        def change(ca: CorrectiveAction) -> None:
            self._require_owner_or_quality(ca, "plan")
            numbers.append(ca.plan(action, worker, due_date, action_type, today=day,
                                   past_due_reason=past_due_reason))

        result = self.core.update(CorrectiveAction, ref, change)
        return WriteResult(result.id, result.status, result.version, {"action": numbers[0]})

    @operation("ca approve")
    def approve_ca(self, ref: str) -> WriteResult:
        return self.core.update(
            CorrectiveAction, ref,
            lambda ca: ca.approve(self.signing.signature(ca, SignatureMeaning.APPROVAL)))

    @operation("ca complete")
    def complete_action(
        self, ref: str, action: str, *, note: str, evidence: Sequence[str | Path] = (),
        on_behalf_of: str | None = None, reason: str | None = None,
    ) -> WriteResult:
        """Mark an item done as its assignee or the CA owner; or, for quality, record it on
        behalf of one of them with a reason (both people are kept)."""
        core = self.core
        user = core.actor()
        ca = core.load(CorrectiveAction, core.canonical(ref, "CA"))
        item = ca.item(action)
        doer = user
        if on_behalf_of is not None:
            if not core.has_role(user, "quality"):
                raise NotPermitted(f"{user} may not record a completion on someone's behalf: "
                                   "that needs the quality role")
            doer = core.user(on_behalf_of.strip().lower()).user_id
            if doer == user:
                raise InvalidInput(f"{user} is you: complete the action without --on-behalf-of")
        if doer not in (item.get("assignee"), ca.owner):
            raise NotPermitted(f"{doer} may not complete {item['number']} of {ca.ref}: only its "
                               f"assignee ({item.get('assignee')}) or the CA owner ({ca.owner})")
        files, entries = evidence_files(core, evidence)
        if on_behalf_of is None:
            ca.complete(action, note, entries)
        else:
            ca.complete(action, note, entries, done_by=doer, reason=reason)
        core.persist(ca, *files)
        return WriteResult(ca.ref, ca.status, ca.version, {"action": action.upper()})

    @operation("ca extend")
    def extend_action(self, ref: str, action: str, *, due: str, reason: str,
                      allow_past_due: bool = False) -> WriteResult:
        """Move a due date later; a new date before today (UTC) needs `allow_past_due` (R5)."""
        due_date = parse_date(due, "due").isoformat()
        day = today()
        result = self.core.update(
            CorrectiveAction, ref,
            lambda ca: ca.extend(action, due_date, reason, today=day,
                                 allow_past_due=allow_past_due))
        return WriteResult(result.id, result.status, result.version, {"action": action.upper()})

    @operation("ca plan-check")
    def plan_check(self, ref: str, *, criteria: str, due: str, method: str | None = None,
                   reason: str | None = None) -> WriteResult:
        """Plan how the actions' effectiveness will be checked, and by when (SPEC §12); a check
        already planned for this iteration is replaced only with a reason."""
        due_date = parse_date(due, "due").isoformat()
        day = today()

        def change(ca: CorrectiveAction) -> None:
            self._require_owner_or_quality(ca, "plan the effectiveness check of")
            ca.plan_check(criteria, due_date, method, today=day, reason=reason)

        return self.core.update(CorrectiveAction, ref, change)

    @operation("ca verify")
    def verify_ca(
        self, ref: str, *, effective: bool = False, note: str,
        evidence: Sequence[str | Path] = (), inconclusive: bool = False,
        due: str | None = None, reason: str | None = None,
    ) -> WriteResult:
        """Judge the actions effective or not (signed: verification, R3); or, `inconclusive`,
        extend the planned check to `due` with a `reason`, the CA staying implemented."""
        core = self.core
        if inconclusive and effective:
            raise InvalidInput("a check is either effective or inconclusive, not both")
        if inconclusive and due is None:
            raise InvalidInput("an inconclusive check needs its new due date (--due)")
        if not inconclusive and (due is not None or reason is not None):
            raise InvalidInput("--due and --reason go with --inconclusive")
        new_due = parse_date(due, "due").isoformat() if due is not None else None
        ca = core.load(CorrectiveAction, core.canonical(ref, "CA"))
        files, entries = evidence_files(core, evidence)
        if new_due is not None:
            ca.check_extendable(core.actor(), new_due, reason)
            ca.inconclusive(note, entries,
                            self.signing.signature(ca, SignatureMeaning.VERIFICATION),
                            new_due, reason or "")
        else:
            ca.verify(effective, note, entries,
                      self.signing.signature(ca, SignatureMeaning.VERIFICATION))
        core.persist(ca, *files)
        check = ca.current_check
        detail: dict[str, object] = {"iteration": ca.iteration}
        if new_due is not None and check is not None:
            detail["check_due"] = check["due"]
        return WriteResult(ca.ref, ca.status, ca.version, detail)

    @operation("ca impact")
    def assess_impact(self, ref: str, *, statement: str, risk_file: str | None = None,
                      changes: Sequence[str] = (), training: Sequence[str] = ()) -> WriteResult:
        """Record that this iteration's actions do not adversely affect safety, performance or
        regulatory compliance, with the risk file, document changes and training (R11)."""

        def change(ca: CorrectiveAction) -> None:
            self._require_owner_or_quality(ca, "record the impact assessment of")
            ca.assess_impact(statement, risk_file, list(changes), list(training))

        return self.core.update(CorrectiveAction, ref, change)

    @operation("nc link")
    def link_nc(self, nc_ref: str, ca_ref: str) -> WriteResult:
        """Link an NC to a corrective action (both records change; R7: not to a closed CA)."""
        nc = self.core.load(Nonconformity, nc_ref)
        ca = self.core.load(CorrectiveAction, ca_ref)
        if ca.status in (CAStatus.CLOSED, CAStatus.CANCELLED):
            raise RuleViolation("R7", f"cannot link {nc.ref} to {ca.ref}: it is {ca.status}")
        nc.link(ca.ref)
        ca.link_nc(nc.ref)
        self.core.persist(nc, ca)
        return WriteResult(nc.ref, nc.status, nc.version, {"ca": ca.ref})

    @operation("ca close")
    def close_ca(self, ref: str) -> WriteResult:
        core = self.core
        ca = core.load(CorrectiveAction, core.canonical(ref, "CA"))
        ncs = [core.load(Nonconformity, r) for r in ca.linked_ncs]
        closing = [nc for nc in ncs if nc.status == NCStatus.LINKED and ca.ref in nc.linked_cas]
        # R11 applies to stores of the iso13485 profile; checked before the password is asked.
        impact_required = core.profile() == Profile.ISO13485
        ca.check_closable(impact_required=impact_required)
        ca.close(self.signing.signature(ca, SignatureMeaning.APPROVAL),
                 [nc.ref for nc in closing], impact_required=impact_required)
        for nc in closing:
            nc.close_with(ca.ref)
        core.persist(ca, *closing)  # one transaction: the CA and its NCs close together (R4)
        return WriteResult(ca.ref, ca.status, ca.version,
                           {"closed_ncs": [nc.ref for nc in closing]})

    @operation("ca cancel")
    def cancel_ca(self, ref: str, *, reason: str) -> WriteResult:
        return self.core.update(CorrectiveAction, ref, lambda ca: ca.cancel(reason))

    @operation("ca reopen")
    def reopen_ca(self, ref: str, *, reason: str) -> WriteResult:
        return self.core.update(CorrectiveAction, ref, lambda ca: ca.reopen(reason))

    def _worker(self, part: str, user: str, command: str, work: str) -> str:
        """The id of the active user named as a CA's owner or an action's assignee, who must
        hold a role that may run `command`; NotFound for a user the store does not have,
        InvalidInput otherwise."""
        name = user.strip().lower()
        account = self.core.find_user(name) if is_user_id(name) else None
        if account is None:
            raise NotFound(f"not found (user): {part} {user!r} is not a user of this store")
        if not account.active:
            raise InvalidInput(f"{part} {account.user_id} is deactivated; name an active user")
        if not permits(account.roles, command):
            needed = " or ".join(sorted(allowed_roles(command)))
            raise InvalidInput(f"{part} {account.user_id} (roles: "
                               f"{', '.join(account.roles) or 'none'}) could not {work}: "
                               f"an {part} needs the {needed} role")
        return account.user_id

    def _require_owner_or_quality(self, ca: CorrectiveAction, what: str) -> None:
        user = self.core.actor()
        if user != ca.owner and not self.core.has_role(user, "quality"):
            raise NotPermitted(f"{user} may not {what} {ca.ref}: only its owner ({ca.owner}) "
                               "or the quality role")
