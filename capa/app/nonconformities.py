"""Nonconformities (SPEC §4): raised, contained, assessed, linked to a CA, closed, cancelled,
reopened and amended."""

from __future__ import annotations

import datetime as dt

from capa.app.core import Core, WriteResult
from capa.app.operations import operation
from capa.app.signing import Signing
from capa.domain.errors import InvalidInput
from capa.domain.nonconformity import Nonconformity
from capa.domain.values import SignatureMeaning, parse_date


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
        return WriteResult(nc.ref, nc.status, nc.version)

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
