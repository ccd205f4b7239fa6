"""One record over time (SPEC §3): its state now, at a version or at a moment (time travel),
and its history, field by field, with who did what and their signatures."""

from __future__ import annotations

from typing import Any

from capa.adapters.eventlog import positions_of
from capa.app.core import Core, parse_moment
from capa.app.operations import operation
from capa.app.views import CorrectiveActionView, HistoryEntry, NonconformityView
from capa.domain.corrective_action import CorrectiveAction
from capa.domain.errors import InvalidInput, NotFound
from capa.domain.nonconformity import Nonconformity
from capa.domain.record import Record, record_uuid, utc_iso
from capa.domain.store import STORE_REF
from capa.domain.trail_review import TRAIL_REVIEW_REF, is_trail_review_ref
from capa.domain.user import USER_REF_PREFIX, is_user_id, user_ref
from capa.domain.webhook import DELIVERY_REF_PREFIX, WEBHOOK_REF_PREFIX


class Records:
    """Show and history of NCs, CAs and accounts on the core's store."""

    def __init__(self, core: Core) -> None:
        self.core = core

    @operation("nc show", "ca show")
    def show(
        self, ref: str, *, version: int | None = None, as_of: str | None = None
    ) -> NonconformityView | CorrectiveActionView:
        return record_view(self.core, ref, version=version, as_of=as_of)

    @operation("history")
    def history(self, ref: str) -> list[HistoryEntry]:
        core = self.core
        # A user id names the account's own history (SPEC §3: NC, CA or user).
        # `history USER-jchen` and `history jchen` name the same account.
        # AUDIT-TRAIL names the record of the audit-trail reviews, unless a user of that id
        # exists (whose history `history USER-audit-trail` gives in any case).
        is_record = core.is_record_id(ref)
        name = ref.strip()
        reviews = is_trail_review_ref(name) and (
            name.isupper() or core.find_user(name.lower()) is None)
        if name.upper().startswith(USER_REF_PREFIX):
            name = name[len(USER_REF_PREFIX):]
        # `STORE` (upper case, as no user id is written) names the store's own record: its
        # creation and profile changes.
        is_store = name == STORE_REF
        # WEBHOOK-1 and DELIVERY-WEBHOOK-1/42 name a webhook and one of its deliveries.
        hook = name.upper().startswith((WEBHOOK_REF_PREFIX, DELIVERY_REF_PREFIX)) and (
            name.isupper() or core.find_user(name.lower()) is None)
        is_user = not is_record and not is_store and not reviews and not hook \
            and is_user_id(name)
        canonical = (STORE_REF if is_store else TRAIL_REVIEW_REF if reviews
                     else name.upper() if hook else user_ref(name) if is_user
                     else core.canonical(ref))
        record_id = record_uuid(canonical)
        stored = core.recorder.select_events(record_id)
        if not stored:
            if is_user:
                raise NotFound(f"not found (user): {name.lower()!r} is not a user of this store")
            raise NotFound(f"{canonical} not found")
        positions = positions_of(core.recorder, record_id)
        entries: list[HistoryEntry] = []
        aggregate: Any = None
        for item in stored:
            domain_event: Any = core.mapper.to_domain_event(item)
            before = aggregate.fields() if aggregate is not None else {}
            aggregate = domain_event.mutate(aggregate)
            after = aggregate.fields()
            attributes = dict(vars(domain_event))
            entries.append(HistoryEntry.model_validate({
                "position": positions.get(item.originator_version, 0),
                "version": item.originator_version,
                "time": utc_iso(domain_event.timestamp),
                "actor": domain_event.actor,
                "actor_name": core.full_name(domain_event.actor),
                "event_type": type(domain_event).__name__,
                "changes": _diff(before, after),
                "reason": attributes.get("reason"),
                "signature": _signature_of(attributes, domain_event),
            }))
        return entries


def record_view(
    core: Core, ref: str, *, version: int | None = None, as_of: str | None = None
) -> NonconformityView | CorrectiveActionView:
    """An NC or CA as it is, at a version or at a moment (for an operation that shows it)."""
    canonical = core.canonical(ref)
    kind: type[Record] = Nonconformity
    if not canonical.startswith("NC"):
        kind = CorrectiveAction
    if version is not None and as_of is not None:
        raise InvalidInput("give either a version or an as-of time, not both")
    if as_of is not None:
        version = core.version_at(canonical, parse_moment(as_of))
    if version is not None and version < 1:
        raise InvalidInput(f"version must be 1 or more (got {version})")
    record = core.load(kind, canonical, version=version)
    if version is not None and record.version != version:
        raise NotFound(f"{canonical} has no version {version} (latest is {record.version})")
    data = {"id": record.ref, "version": record.version,
            "created_at": utc_iso(record.created_on),
            "updated_at": utc_iso(record.modified_on), **record.fields()}
    if isinstance(record, Nonconformity):
        return NonconformityView.model_validate(data)
    assert isinstance(record, CorrectiveAction)
    data["root_cause"] = record.root_cause
    return CorrectiveActionView.model_validate(data)


def _signature_of(attributes: dict[str, Any], domain_event: Any) -> dict[str, Any] | None:
    signature = attributes.get("signature")
    if not signature:
        return None
    # A digital signature carries the time it signed; an older one is dated by its event.
    return {"signed_at": utc_iso(domain_event.timestamp), **signature}


def _diff(before: dict[str, Any], after: dict[str, Any], path: str = "") -> list[dict[str, Any]]:
    """Field-level changes between two states: nested fields as dotted paths, list entries by
    their number (A1…) or position, appended entries as additions."""
    changes: list[dict[str, Any]] = []
    for key in [*after, *(k for k in before if k not in after)]:
        old, new = before.get(key), after.get(key)
        name = f"{path}{key}"
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            changes += _diff(old, new, name + ".")
        elif isinstance(old, list) and isinstance(new, list) and new[: len(old)] == old:
            changes.append({"field": name, "old": None, "new": new[len(old):]})
        elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
            for index, (was, now) in enumerate(zip(old, new, strict=True)):
                if was == now:
                    continue
                label = was.get("number", index + 1) if isinstance(was, dict) else index + 1
                if isinstance(was, dict) and isinstance(now, dict):
                    changes += _diff(was, now, f"{name}[{label}].")
                else:
                    changes.append({"field": f"{name}[{label}]", "old": was, "new": now})
        else:
            changes.append({"field": name, "old": old, "new": new})
    return changes
