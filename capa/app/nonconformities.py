"""Nonconformities (SPEC §4): raised, contained, assessed, linked to a CA, closed, cancelled,
reopened and amended."""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic

from capa.app.core import Core, WriteResult
from capa.app.operations import operation
from capa.app.signing import Signing
from capa.domain.errors import InvalidInput
from capa.domain.nonconformity import Nonconformity
from capa.domain.record import record_uuid
from capa.domain.refs import sort_key
from capa.domain.values import SignatureMeaning, parse_date

#: The most events after the read table's position that a raise looks at for its hint of
#: similar NCs, the latest ones (start-up time, SPEC §7 P1); NCs changed by earlier ones are
#: named as the table had them, or not at all.
_HINT_LAG_LIMIT = 200


def _raised_topic() -> str:
    return get_topic(Nonconformity.Raised)  # type: ignore[attr-defined]


class Nonconformities:
    """The nonconformity operations on the core's store."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.signing = Signing(core)

    @operation("nc raise")
    def raise_nc(
        self, *, title: str, description: str, source: str, severity: str,
        product: str | None = None, lot: str | None = None, external_ref: str | None = None,
        detected_on: str | None = None,
    ) -> WriteResult:
        user = self.core.actor()
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

        nc = self.core.create("NC", build)
        return WriteResult(nc.ref, nc.status, nc.version,
                           {"similar": self._similar_hint(nc.ref, nc.product, nc.title)})

    def _similar_hint(self, ref: str, product: str | None, title: str) -> list[dict[str, str]]:
        """The open NCs of the same product whose title is similar (capa.domain.similarity): a
        hint for whoever raised `ref`, never a refusal, and never a failure of the raise, which
        is saved already. The nc_summary read table gives the NCs as of its tracked position;
        the NCs changed by the events since (the latest `_HINT_LAG_LIMIT` of them) are read from
        their events instead. Nothing is written, and the projection, with the corrective
        action it folds, is not loaded (start-up time, SPEC §7 P1)."""
        if not (product or "").strip():
            return []
        from capa.adapters.readtables import ReadTables
        from capa.domain.similarity import same_product, similar_to

        core, like = self.core, similar_to(title)
        try:
            tables = ReadTables(core.recorder)
            tracked = tables.schema_version() is not None
            position = tables.position() if tracked else 0
            rows = tables.open_ncs_of_product(str(product)) if tracked else []
            prefix, raised = get_topic(Nonconformity) + ".", _raised_topic()
            changed: dict[UUID, list[Any]] = {}
            # Far behind, the latest events are the likelier to hold a duplicate just raised.
            last = core.recorder.max_notification_id() or 0
            start = max(position + 1, last - _HINT_LAG_LIMIT + 1)
            for n in core.recorder.select_notifications(start=start, limit=_HINT_LAG_LIMIT):
                if n.topic.startswith(prefix):
                    changed.setdefault(UUID(str(n.originator_id)), []).append(n)
            changed.pop(record_uuid(ref), None)
            found = {str(row["id"]): (str(row["status"]), str(row["title"])) for row in rows}
            for originator, items in changed.items():
                if len(items) == 1 and items[0].originator_version == 1 \
                        and items[0].topic == raised:
                    # Raised since, and nothing more: open, as its one event says.
                    nc: Any = core.mapper.to_domain_event(items[0])
                    status = "open"
                else:
                    nc = core.repository.get(originator)
                    status = nc.status
                found.pop(nc.ref, None)
                if status not in ("closed", "cancelled") and same_product(nc.product, product):
                    found[nc.ref] = (status, nc.title)
        except Exception:  # noqa: BLE001 - a hint that cannot be read is no hint
            return []
        return [{"id": nc_ref, "status": status, "title": text}
                for nc_ref, (status, text) in sorted(found.items(), key=lambda i: sort_key(i[0]))
                if nc_ref != ref and like(text)]

    @operation("nc contain")
    def contain_nc(self, ref: str, *, action: str, disposition: str = "none",
                   location: str | None = None) -> WriteResult:
        return self.core.update(Nonconformity, ref,
                                lambda nc: nc.contain(action, disposition, location))

    @operation("nc assess")
    def assess_nc(
        self, ref: str, *, impact: int, likelihood: int, capa_required: bool,
        rationale: str | None = None,
    ) -> WriteResult:
        return self.core.update(
            Nonconformity, ref,
            lambda nc: nc.assess(impact, likelihood, capa_required, rationale))

    @operation("nc close")
    def close_nc(self, ref: str) -> WriteResult:
        nc = self.core.load(Nonconformity, self.core.canonical(ref, "NC"))
        nc.close(self.signing.signature(nc, SignatureMeaning.APPROVAL))
        self.core.persist(nc)
        return WriteResult(nc.ref, nc.status, nc.version)

    @operation("nc cancel")
    def cancel_nc(self, ref: str, *, reason: str) -> WriteResult:
        return self.core.update(Nonconformity, ref, lambda nc: nc.cancel(reason))

    @operation("nc reopen")
    def reopen_nc(self, ref: str, *, reason: str) -> WriteResult:
        return self.core.update(Nonconformity, ref, lambda nc: nc.reopen(reason))

    @operation("nc amend")
    def amend_nc(self, ref: str, *, field: str, value: str, reason: str) -> WriteResult:
        return self.core.update(Nonconformity, ref, lambda nc: nc.amend(field, value, reason))
