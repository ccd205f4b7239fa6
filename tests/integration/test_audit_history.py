"""History for auditors: a signature is bound to the state the signer saw, and that state can
be replayed from the signature's own time (SPEC §5, R9)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

from capa.domain.nonconformity import Nonconformity
from tests.support.cast import ADMINISTRATOR, QUALITY_MANAGER, QUALITY_TEAM, REPORTER, part_of
from tests.support.stores import Store

CAST = part_of(QUALITY_TEAM, ADMINISTRATOR, QUALITY_MANAGER, REPORTER)


def test_show_as_of_the_signature_replays_what_the_signer_saw(store: Store) -> None:
    app = store.create(CAST)
    with store.acting(app, "tokafor"):
        ref = app.nonconformities.raise_nc(title="Burr on flange", description="Found at goods-in",
                                           source="supplier", severity="minor").id
    with store.acting(app, "mhernandez"):
        app.nonconformities.amend_nc(ref, field="title", value="Burr on flange F3",
                                     reason="Precise location")
        app.nonconformities.assess_nc(ref, impact=1, likelihood=2, capa_required=False,
                                      rationale="Cosmetic, supplier informed")
        app.nonconformities.close_nc(ref)
        signing = [e for e in app.records.history(ref) if e.signature is not None]
        assert len(signing) == 1
        signature = signing[0].signature
        assert signature is not None
        signed_at = dt.datetime.fromisoformat(signature.signed_at.replace("Z", "+00:00"))

        # Just before the signing event: exactly the version the signature was made over.
        before = (signed_at - dt.timedelta(microseconds=1)).isoformat().replace("+00:00", "Z")
        seen = app.records.show(ref, as_of=before)
        assert seen.version == signature.signed_version
        assert seen.status == "assessed"
        assert seen.title == "Burr on flange F3"

        # The digest in the signature is the SHA-256 of that version's canonical state.
        record = app.load(Nonconformity, ref, version=signature.signed_version)
        state = {"id": record.ref, "version": record.version, **record.fields()}
        canonical = json.dumps(state, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert hashlib.sha256(canonical.encode()).hexdigest() == signature.content_sha256

        # At the signature's own time the record shows the signed result, one version later.
        at = app.records.show(ref, as_of=signature.signed_at)
        assert at.version == signature.signed_version + 1
        assert at.status == "closed"
