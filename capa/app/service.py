"""The capa application service: one method per command, queries return view models."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

import capa
from capa.app.readside import ReadSide
from capa.domain.corrective_action import CorrectiveAction
from capa.domain.errors import Conflict, InvalidInput, NotFound, NotPermitted, RuleViolation
from capa.domain.nonconformity import Nonconformity
from capa.domain.record import Record, actor_id, record_uuid, utc_iso
from capa.domain.store import STORE_REF, EvidenceFile, StoreRecord
from capa.domain.values import CAStatus, NCStatus, SignatureMeaning, parse_date

if TYPE_CHECKING:
    from capa.app.views import (
        CorrectiveActionView,
        HistoryEntry,
        NonconformityView,
        OverdueItem,
    )

R = TypeVar("R", bound=Record)

MAX_EVIDENCE_BYTES = 25 * 1024 * 1024
_REF = re.compile(r"^(NC|CA)-(\d{4})-(\d{4,})$")
_CREATE_ATTEMPTS = 20


@dataclass(frozen=True)
class WriteResult:
    """What every write returns: the record, its new status and version."""

    id: str
    status: str
    version: int
    detail: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "status": self.status, "version": self.version}
        out.update(self.detail or {})
        return out


class CapaApplication(ReadSide, Application[UUID]):
    """Nonconformities and corrective actions in one event store, so that a CA's closure and
    its NCs' closures are one atomic save (R4)."""

    name = "capa"
    snapshotting_intervals: ClassVar[dict[type[Aggregate], int]] = {  # type: ignore[misc]
        Nonconformity: 50,
        CorrectiveAction: 50,
    }

    # -- acting user -----------------------------------------------------------------------

    @contextmanager
    def acting_as(self, user: str) -> Iterator[None]:
        token = actor_id.set(user)
        try:
            yield
        finally:
            actor_id.reset(token)

    def _actor(self) -> str:
        user = actor_id.get()
        if not user:
            raise NotPermitted("no acting user: set CAPA_USER to the user id who is acting")
        return user

    def full_name(self, user: str) -> str:
        return user

    # -- store -----------------------------------------------------------------------------

    def initialise(self, organisation: str, key_fingerprint: str | None = None) -> WriteResult:
        self._actor()
        if self._exists(STORE_REF):
            raise InvalidInput("this store is already initialised")
        store = StoreRecord(ref=STORE_REF, organisation=organisation,
                            tool_version=capa.__version__, key_fingerprint=key_fingerprint)
        self._save(store)
        return WriteResult(STORE_REF, store.status, store.version)

    def store_info(self) -> dict[str, Any]:
        store = self._load(StoreRecord, STORE_REF)
        return {"organisation": store.organisation, "tool_version": store.tool_version,
                "key_fingerprint": store.key_fingerprint, "created_at": utc_iso(store.created_on)}

    # -- nonconformities -------------------------------------------------------------------

    def raise_nc(
        self, *, title: str, description: str, source: str, severity: str,
        product: str | None = None, lot: str | None = None, external_ref: str | None = None,
        detected_on: str | None = None,
    ) -> WriteResult:
        user = self._actor()
        today = dt.datetime.now(dt.UTC).date()
        if detected_on is None:
            detected = today
        else:
            detected = parse_date(detected_on, "detected-on")
            if detected > today:
                raise InvalidInput(f"detected-on {detected} is in the future")

        def build(ref: str) -> Nonconformity:
            return Nonconformity.raise_new(
                ref=ref, title=title, description=description, source=source,
                severity=severity, product=product, lot=lot, external_ref=external_ref,
                detected_on=detected.isoformat(), reported_by=user,
            )

        nc = self._create("NC", build)
        return WriteResult(nc.ref, nc.status, nc.version)

    def contain_nc(self, ref: str, *, action: str, disposition: str = "none") -> WriteResult:
        return self._update(Nonconformity, ref, lambda nc: nc.contain(action, disposition))

    def assess_nc(
        self, ref: str, *, impact: int, likelihood: int, capa_required: bool,
        rationale: str | None = None,
    ) -> WriteResult:
        return self._update(
            Nonconformity, ref,
            lambda nc: nc.assess(impact, likelihood, capa_required, rationale),
        )

    def link_nc(self, nc_ref: str, ca_ref: str) -> WriteResult:
        self._actor()
        nc = self._load(Nonconformity, nc_ref)
        ca = self._load(CorrectiveAction, ca_ref)
        if ca.status in (CAStatus.CLOSED, CAStatus.CANCELLED):
            raise RuleViolation("R7", f"cannot link {nc.ref} to {ca.ref}: it is {ca.status}")
        nc.link(ca.ref)
        ca.link_nc(nc.ref)
        self._save(nc, ca)
        return WriteResult(nc.ref, nc.status, nc.version, {"ca": ca.ref})

    def close_nc(self, ref: str) -> WriteResult:
        nc = self._load(Nonconformity, self._canonical(ref, "NC"))
        nc.close(self._signature(nc, SignatureMeaning.APPROVAL))
        self._save(nc)
        return WriteResult(nc.ref, nc.status, nc.version)

    def cancel_nc(self, ref: str, *, reason: str) -> WriteResult:
        return self._update(Nonconformity, ref, lambda nc: nc.cancel(reason))

    def reopen_nc(self, ref: str, *, reason: str) -> WriteResult:
        return self._update(Nonconformity, ref, lambda nc: nc.reopen(reason))

    def amend_nc(self, ref: str, *, field: str, value: str, reason: str) -> WriteResult:
        return self._update(Nonconformity, ref, lambda nc: nc.amend(field, value, reason))

    # -- corrective actions ----------------------------------------------------------------

    def open_ca(
        self, *, title: str, problem: str, owner: str, ncs: Sequence[str] = ()
    ) -> WriteResult:
        self._actor()
        nc_refs = list(dict.fromkeys(self._canonical(r, "NC") for r in ncs))
        linked = [self._load(Nonconformity, r) for r in nc_refs]
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
                nc = self._load(Nonconformity, r)
                nc.link(ref)
                holder.append(nc)
            return ca

        ca = self._create("CA", build, companions=holder)
        return WriteResult(ca.ref, ca.status, ca.version, {"linked_ncs": nc_refs})

    def investigate_ca(
        self, ref: str, *, method: str, root_cause: str, category: str,
        whys: Sequence[str] = (),
    ) -> WriteResult:
        return self._update(
            CorrectiveAction, ref,
            lambda ca: ca.investigate(method, root_cause, category, list(whys)),
        )

    def plan_ca(
        self, ref: str, *, action: str, assignee: str, due: str, action_type: str
    ) -> WriteResult:
        due_date = parse_date(due, "due").isoformat()
        numbers: list[str] = []
        result = self._update(
            CorrectiveAction, ref,
            lambda ca: numbers.append(ca.plan(action, assignee, due_date, action_type)),
        )
        return WriteResult(result.id, result.status, result.version, {"action": numbers[0]})

    def approve_ca(self, ref: str) -> WriteResult:
        return self._update(
            CorrectiveAction, ref,
            lambda ca: ca.approve(self._signature(ca, SignatureMeaning.APPROVAL)),
        )

    def complete_action(
        self, ref: str, action: str, *, note: str, evidence: Sequence[str | Path] = ()
    ) -> WriteResult:
        self._actor()
        ca = self._load(CorrectiveAction, self._canonical(ref, "CA"))
        files, entries = self._evidence(evidence)
        ca.complete(action, note, entries)
        self._save(ca, *files)
        return WriteResult(ca.ref, ca.status, ca.version, {"action": action.upper()})

    def extend_action(self, ref: str, action: str, *, due: str, reason: str) -> WriteResult:
        due_date = parse_date(due, "due").isoformat()
        result = self._update(CorrectiveAction, ref, lambda ca: ca.extend(action, due_date, reason))
        return WriteResult(result.id, result.status, result.version, {"action": action.upper()})

    def verify_ca(
        self, ref: str, *, effective: bool, note: str, evidence: Sequence[str | Path] = ()
    ) -> WriteResult:
        self._actor()
        ca = self._load(CorrectiveAction, self._canonical(ref, "CA"))
        files, entries = self._evidence(evidence)
        ca.verify(effective, note, entries, self._signature(ca, SignatureMeaning.VERIFICATION))
        self._save(ca, *files)
        return WriteResult(ca.ref, ca.status, ca.version, {"iteration": ca.iteration})

    def close_ca(self, ref: str) -> WriteResult:
        self._actor()
        ca = self._load(CorrectiveAction, self._canonical(ref, "CA"))
        ncs = [self._load(Nonconformity, r) for r in ca.linked_ncs]
        closing = [nc for nc in ncs if nc.status == NCStatus.LINKED and ca.ref in nc.linked_cas]
        ca.close(self._signature(ca, SignatureMeaning.APPROVAL), [nc.ref for nc in closing])
        for nc in closing:
            nc.close_with(ca.ref)
        self._save(ca, *closing)  # one transaction: the CA and its NCs close together (R4)
        return WriteResult(ca.ref, ca.status, ca.version,
                           {"closed_ncs": [nc.ref for nc in closing]})

    def cancel_ca(self, ref: str, *, reason: str) -> WriteResult:
        return self._update(CorrectiveAction, ref, lambda ca: ca.cancel(reason))

    def reopen_ca(self, ref: str, *, reason: str) -> WriteResult:
        return self._update(CorrectiveAction, ref, lambda ca: ca.reopen(reason))

    # -- queries ---------------------------------------------------------------------------

    def show(
        self, ref: str, *, version: int | None = None, as_of: str | None = None
    ) -> NonconformityView | CorrectiveActionView:
        from capa.app.views import CorrectiveActionView, NonconformityView

        canonical = self._canonical(ref)
        kind: type[Record] = Nonconformity if canonical.startswith("NC") else CorrectiveAction
        if version is not None and as_of is not None:
            raise InvalidInput("give either a version or an as-of time, not both")
        if as_of is not None:
            version = self._version_at(canonical, parse_moment(as_of))
        if version is not None and version < 1:
            raise InvalidInput(f"version must be 1 or more (got {version})")
        record = self._load(kind, canonical, version=version)
        if version is not None and record.version != version:
            raise NotFound(f"{canonical} has no version {version} (latest is {record.version})")
        data = {"id": record.ref, "version": record.version,
                "created_at": utc_iso(record.created_on),
                "updated_at": utc_iso(record.modified_on), **record.fields()}
        if isinstance(record, CorrectiveAction):
            data["root_cause"] = record.root_cause
            return CorrectiveActionView.model_validate(data)
        return NonconformityView.model_validate(data)

    def history(self, ref: str) -> list[HistoryEntry]:
        from capa.app.views import HistoryEntry

        canonical = self._canonical(ref)
        record_id = record_uuid(canonical)
        stored = self.recorder.select_events(record_id)
        if not stored:
            raise NotFound(f"{canonical} not found")
        positions = self._positions(record_id)
        entries: list[HistoryEntry] = []
        aggregate: Any = None
        for item in stored:
            domain_event: Any = self.mapper.to_domain_event(item)
            before = aggregate.fields() if aggregate is not None else {}
            aggregate = domain_event.mutate(aggregate)
            after = aggregate.fields()
            attributes = _attributes(domain_event)
            entries.append(HistoryEntry.model_validate({
                "position": positions.get(item.originator_version, 0),
                "version": item.originator_version,
                "time": utc_iso(domain_event.timestamp),
                "actor": domain_event.actor,
                "actor_name": self.full_name(domain_event.actor),
                "event_type": type(domain_event).__name__,
                "changes": _diff(before, after),
                "reason": attributes.get("reason"),
                "signature": _signature_of(attributes, domain_event),
            }))
        return entries

    def list_records(
        self, kind: str, *, statuses: Sequence[str] = (), severities: Sequence[str] = (),
        sources: Sequence[str] = (), overdue: bool = False,
    ) -> list[Any]:
        """NCs or CAs matching every given filter; a CA matches severity and source through
        its linked NCs, an NC is overdue when one of its CAs has an overdue action item.
        Answered from the read models (capa.readmodels), caught up first."""
        from capa.app.readside import list_records

        return list_records(self, kind, statuses=statuses, severities=severities,
                            sources=sources, overdue=overdue)

    def overdue(self) -> list[OverdueItem]:
        """Implemented CAs awaiting verification and open action items past due, from the read
        models."""
        from capa.app.readside import overdue_items

        return overdue_items(self)

    # -- internals -------------------------------------------------------------------------

    def _canonical(self, ref: str, prefix: str | None = None) -> str:
        text = ref.strip().upper()
        match = _REF.match(text)
        if not match or (prefix is not None and match.group(1) != prefix):
            expected = f"{prefix}-YYYY-NNNN" if prefix else "NC-YYYY-NNNN or CA-YYYY-NNNN"
            raise InvalidInput(f"{ref!r} is not a record id (expected {expected})")
        return text

    def _load(self, kind: type[R], ref: str, version: int | None = None) -> R:
        canonical = ref if ref == STORE_REF else self._canonical(ref)
        try:
            record = self.repository.get(record_uuid(canonical), version=version)
        except AggregateNotFoundError:
            raise NotFound(f"{canonical} not found") from None
        if not isinstance(record, kind):
            raise NotFound(f"{canonical} not found")
        return record

    def _update(self, kind: type[R], ref: str, change: Any) -> WriteResult:
        self._actor()
        record = self._load(kind, ref)
        change(record)
        self._save(record)
        return WriteResult(record.ref, record.status, record.version)

    def _save(self, *records: Aggregate) -> None:
        try:
            self.save(*records)
        except IntegrityError:
            raise Conflict(
                "the record changed while this command ran; nothing was written, retry is safe"
            ) from None

    def _exists(self, ref: str) -> bool:
        return bool(self.recorder.select_events(record_uuid(ref), lte=1, limit=1))

    def _create(self, prefix: str, build: Any, companions: list[Any] | None = None) -> Any:
        """Allocate the next free number of this year and save; a writer who lost the race to
        the same number collides on the record id and simply takes the next one."""
        year = dt.datetime.now(dt.UTC).year
        for _ in range(_CREATE_ATTEMPTS):
            ref = format_ref(prefix, year, self._next_number(prefix, year))
            record = build(ref)
            try:
                self.save(record, *(companions or []))
            except IntegrityError:
                if companions and any(self._changed(c) for c in companions):
                    raise Conflict(
                        "a linked record changed while this command ran; nothing was written, "
                        "retry is safe"
                    ) from None
                continue
            return record
        raise Conflict("could not allocate a record number; nothing was written, retry is safe")

    def _changed(self, record: Aggregate) -> bool:
        latest = self.recorder.select_events(record.id, desc=True, limit=1)
        return bool(latest) and latest[0].originator_version >= record.version

    def _next_number(self, prefix: str, year: int) -> int:
        # Numbers are allocated without gaps, so the first missing one is found by galloping
        # then bisecting: O(log n) point reads, no counter record for writers to fight over.
        def taken(n: int) -> bool:
            return self._exists(format_ref(prefix, year, n))

        high = 1
        while taken(high):
            high *= 2
        low = high // 2  # taken (or 0)
        while high - low > 1:
            mid = (low + high) // 2
            if taken(mid):
                low = mid
            else:
                high = mid
        return high

    def _refs(self, prefix: str) -> list[str]:
        year_now = dt.datetime.now(dt.UTC).year
        refs: list[str] = []
        for year in range(2000, year_now + 1):
            n = self._next_number(prefix, year)
            refs.extend(format_ref(prefix, year, i) for i in range(1, n))
        return refs

    def _version_at(self, ref: str, moment: dt.datetime) -> int:
        found = 0
        for item in self.recorder.select_events(record_uuid(ref)):
            event: Any = self.mapper.to_domain_event(item)
            if event.timestamp <= moment:
                found = item.originator_version
            else:
                break
        if not found:
            if not self._exists(ref):
                raise NotFound(f"{ref} not found")
            raise NotFound(f"{ref} did not exist yet at {utc_iso(moment)}")
        return found

    def _positions(self, record_id: UUID) -> dict[int, int]:
        from capa.adapters.eventlog import positions_of

        return positions_of(self.recorder, record_id)

    def _signature(self, record: Record, meaning: SignatureMeaning) -> dict[str, Any]:
        user = self._actor()
        return {"user_id": user, "full_name": self.full_name(user), "meaning": meaning.value,
                "content_sha256": record.content_digest(), "signed_version": record.version}

    def _evidence(
        self, paths: Sequence[str | Path]
    ) -> tuple[list[EvidenceFile], list[dict[str, Any]]]:
        files: list[EvidenceFile] = []
        entries: list[dict[str, Any]] = []
        for raw in paths:
            path = Path(raw)
            if not path.is_file():
                raise InvalidInput(f"evidence file {str(path)!r} does not exist")
            size = path.stat().st_size
            if size > MAX_EVIDENCE_BYTES:
                raise InvalidInput(f"evidence file {path.name!r} is larger than 25 MiB")
            content = path.read_bytes()
            digest = hashlib.sha256(content).hexdigest()
            ref = f"EVIDENCE-{digest}"
            if not self._exists(ref) and all(f.ref != ref for f in files):
                files.append(EvidenceFile(ref=ref, sha256=digest, size=size,
                                          content_b64=base64.b64encode(content).decode()))
            import mimetypes

            media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            entries.append({"name": path.name, "size": size, "media_type": media_type,
                            "sha256": digest})
        return files, entries

    def evidence_content(self, sha256: str) -> bytes:
        record = self._load(EvidenceFile, f"EVIDENCE-{sha256.lower()}")
        return base64.b64decode(record.content_b64)


def format_ref(prefix: str, year: int, number: int) -> str:
    return f"{prefix}-{year}-{number:04d}"


def parse_moment(value: str) -> dt.datetime:
    """A date means the end of that day (UTC); a datetime without offset is UTC."""
    text = value.strip()
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            return dt.datetime.combine(day, dt.time.max, tzinfo=dt.UTC)
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"as-of must be a date YYYY-MM-DD or a datetime YYYY-MM-DDTHH:MM[:SS][Z] "
            f"(got {value!r})"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _attributes(domain_event: Any) -> dict[str, Any]:
    return dict(vars(domain_event))


def _signature_of(attributes: dict[str, Any], domain_event: Any) -> dict[str, Any] | None:
    signature = attributes.get("signature")
    if not signature:
        return None
    return {**signature, "signed_at": utc_iso(domain_event.timestamp)}


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


def _is_overdue(view: Any, today: str) -> bool:
    items = getattr(view, "items", None)
    if items is None or view.status in ("closed", "cancelled"):
        return False
    return any(i.state == "open" and i.due < today for i in items)
