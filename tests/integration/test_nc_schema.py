"""One NC schema (capa.domain.nonconformity.NC_SCHEMA): an NC raised through the application and
one imported through the bulk fast path store the same Raised event, key for key in the same
order, and project to the same read-table row and document."""

from __future__ import annotations

import json
from typing import Any

import pytest

from capa.app.application import CapaApplication
from capa.domain.nonconformity import NC_FIELDS, NC_SCHEMA, RAISED_FIELDS, fresh_state
from capa.domain.record import record_uuid
from capa.readmodels.projection import COLUMNS
from tests.support.cast import REPORTER
from tests.support.stores import Store, app, store

__all__ = ["app", "store"]

FIELDS = {"title": 'Gauge "GX-2" reads – café', "description": "Boss cracked\nafter 3 weeks",
          "source": "customer-complaint", "severity": "major", "product": "P-7",
          "lot": "L00012", "external_ref": "E-1", "detected_on": "2026-01-15"}
#: What differs between two NCs raised apart: their reference and when they were raised.
_OWN = {"ref", "id", "timestamp", "created_at", "updated_at", "sort_key", "raised_at"}


def _state(app: CapaApplication, ref: str) -> dict[str, Any]:
    (stored,) = app.recorder.select_events(record_uuid(ref))
    data = stored.state
    if app.mapper.cipher:
        data = app.mapper.cipher.decrypt(data)
    if app.mapper.compressor:
        data = app.mapper.compressor.decompress(data)
    state: dict[str, Any] = json.loads(data)  # keys in the order they were stored
    return state


def _row(store: Store, ref: str) -> dict[str, Any]:
    (row,) = store.rows("SELECT * FROM nc_summary WHERE id = ?", ref)
    return dict(zip(COLUMNS["nc_summary"], row, strict=True))


def _without_own(data: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(key, value) for key, value in data.items() if key not in _OWN]


@pytest.mark.parametrize("up_to_date", [True, False], ids=["read-tables-current", "catch-up"])
def test_raised_and_imported_ncs_store_and_project_alike(
        store: Store, app: CapaApplication, up_to_date: bool) -> None:
    with store.acting(app, REPORTER):
        raised = app.nonconformities.raise_nc(**FIELDS).id
        if up_to_date:
            app.queries.list_records("nc")  # an import then writes its read rows with its events
        report = app.intake.import_ncs([{**FIELDS, "external_ref": "E-2"}], {})
        app.queries.list_records("nc")
    imported = report.first_id or ""
    assert imported != raised

    by_app, by_import = _state(app, raised), _state(app, imported)
    assert list(by_app) == list(by_import) == [
        "timestamp", "originator_topic", "actor", *RAISED_FIELDS]
    by_import["external_ref"] = by_app["external_ref"]
    assert _without_own(by_app) == _without_own(by_import)
    assert {name: by_app[name] for name in NC_FIELDS} == FIELDS

    rows = {ref: _row(store, ref) for ref in (raised, imported)}
    docs = {ref: json.loads(row.pop("doc")) for ref, row in rows.items()}
    rows[imported]["external_ref"] = docs[imported]["external_ref"] = "E-1"
    assert _without_own(rows[raised]) == _without_own(rows[imported])
    assert list(docs[raised]) == list(docs[imported])
    assert _without_own(docs[raised]) == _without_own(docs[imported])
    assert {key: docs[raised][key] for key in fresh_state()} == fresh_state()


def test_the_schema_is_the_order_the_domain_raises_in(store: Store, app: CapaApplication) -> None:
    assert [spec.name for spec in NC_SCHEMA] == list(NC_FIELDS)
    assert [spec.name for spec in NC_SCHEMA if spec.required] == [
        "title", "description", "source", "severity"]
    with store.acting(app, REPORTER):
        ref = app.nonconformities.raise_nc(**FIELDS).id
    nc = app.repository.get(record_uuid(ref))
    held = nc.fields()
    assert list(held)[:len(RAISED_FIELDS)] == list(RAISED_FIELDS)
    assert {key: held[key] for key in fresh_state()} == fresh_state()
