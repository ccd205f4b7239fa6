"""The audit-trail review (SPEC §12, EU GMP Annex 11 §9) on both back ends: every category of
exception is found in the events of the period; a signed review verifies, travels in audit
bundles, and a review whose digest, counts or signature someone edited in the store is caught by
`capa audit verify` (exit 6, naming the record and version) without any checkpoint."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from capa.app.application import CapaApplication
from capa.app.import_rows import read_csv
from capa.app.migration import LegacySource
from capa.audit.bundle import export_bundle, verify_bundle
from capa.audit.keys import create_store_key, load_private_key
from capa.audit.verification import verify_store
from capa.domain.errors import NotPermitted
from capa.domain.record import actor_id, record_uuid
from capa.domain.trail_review import TRAIL_REVIEW_REF, AuditTrailReviews
from tests.support.backends import (
    ADMIN,
    ENGINEER,
    PASSWORD,
    REPORTER,
    close_all,
    create_store,
    event_rows,
    query,
    run_cli,
)
from tests.support.cast import OWNER
from tests.support.reading import reading

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "verify_bundle.py"
TODAY = dt.datetime.now(dt.UTC).date()
DAY = TODAY.isoformat()
REGISTER = """\
external_ref,title,description,source,severity,detected_on,Status,Closed On
L-1,Seal weak,Peel below 8 N,process,minor,2024-02-01,closed,2024-02-11
"""


@pytest.fixture
def store(store_target: str) -> Iterator[CapaApplication]:
    app = create_store(store_target)
    yield app
    close_all([app])


def signed_review(app: CapaApplication, user: str = ENGINEER) -> dict[str, Any]:
    with app.acting_as(user, PASSWORD):
        return app.reviews.sign_trail_review(DAY, DAY)


def review_rows(target: str) -> list[tuple[int, Any, int, str, bytes]]:
    wanted = record_uuid(TRAIL_REVIEW_REF)
    return [row for row in event_rows(target) if row[1] == wanted]


def verify_cli(target: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(target, ADMIN, ["audit", "verify"], cwd=cwd)


def assert_fails_at(done: subprocess.CompletedProcess[str], version: int, words: str) -> None:
    assert done.returncode == 6, done.stderr
    assert f"({TRAIL_REVIEW_REF} version {version})" in done.stderr, done.stderr
    assert words in done.stderr
    assert "Traceback" not in done.stderr


def test_every_category_is_found_in_the_events_of_the_period(store: CapaApplication,
                                                             tmp_path: Path) -> None:
    app = store
    with app.acting_as(REPORTER, PASSWORD):
        nc = app.nonconformities.raise_nc(title="Burr", description="d", source="process",
                                          severity="minor", detected_on="2021-05-01").id
        on_time = app.nonconformities.raise_nc(title="Dent", description="d",
                                               source="process", severity="minor").id
    yesterday = (TODAY - dt.timedelta(days=1)).isoformat()
    with app.acting_as(ENGINEER, PASSWORD):
        app.nonconformities.assess_nc(nc, impact=2, likelihood=2, capa_required=True)
        ca = app.corrective_actions.open_ca(title="Burrs", problem="p", owner=OWNER,
                                            ncs=[nc]).id
    with app.acting_as(OWNER, PASSWORD):
        app.corrective_actions.investigate_ca(ca, method="other", root_cause="Worn tool",
                                              category="machine")
        app.corrective_actions.plan_ca(ca, action="Sort", assignee=OWNER,
                                       due=yesterday, action_type="correction",
                                       past_due_reason="Already sorted last week")
        app.corrective_actions.plan_ca(ca, action="Replace tool", assignee=OWNER,
                                       due=(TODAY + dt.timedelta(days=9)).isoformat(),
                                       action_type="corrective")
    with app.acting_as("mhernandez", PASSWORD):
        app.corrective_actions.approve_ca(ca)
        app.corrective_actions.extend_action(ca, "A2", due=(TODAY + dt.timedelta(days=20))
                                             .isoformat(), reason="Supplier delay")
        app.corrective_actions.complete_action(ca, "A1", note="Sorted", on_behalf_of=OWNER,
                                               reason="Technician on leave")
        app.identity.grant_role(REPORTER, "owner")
        app.identity.revoke_role(REPORTER, "owner")
    for _ in range(5):
        with pytest.raises(NotPermitted):
            app.identity.authenticate(REPORTER, "not-the-password")
    register = tmp_path / "register.csv"
    register.write_text(REGISTER, encoding="utf-8")
    header, rows = read_csv(register)
    with app.acting_as("mhernandez", PASSWORD):
        app.intake.import_ncs(rows, {}, header=header,
                              source=LegacySource.of_file(register, "QMS 2019"))
        listing = app.reviews.trail_review(DAY, DAY)
    counts = listing["counts"]
    assert counts["extensions"] == 1 and counts["past_due_accepted"] == 1
    assert counts["failed_logins"] == 5 and counts["lockouts"] == 1
    assert counts["migrated"] == 1
    # The late NC and the completion on someone's behalf; the migrated NC's old date is said
    # once, by its migration, and the NC detected today is no exception at all.
    late = [e for e in listing["exceptions"] if e["category"] == "late_entries"]
    assert [e["event"] for e in late] == ["Raised", "ActionItemCompletedOnBehalf"]
    assert late[0]["record"] == nc and "detected on 2021-05-01" in late[0]["detail"]
    assert "recorded by mhernandez on their behalf" in late[1]["detail"]
    assert late[1]["reason"] == "Technician on leave"
    assert on_time not in {e["record"] for e in listing["exceptions"]}
    roles = [e["detail"] for e in listing["exceptions"] if e["category"] == "role_changes"]
    assert f"role owner granted to {REPORTER}" in roles
    assert f"role owner revoked from {REPORTER}" in roles
    locked = next(e for e in listing["exceptions"] if e["category"] == "lockouts")
    assert locked["record"] == f"USER-{REPORTER}"
    extended = next(e for e in listing["exceptions"] if e["category"] == "extensions")
    assert (extended["record"], extended["reason"]) == (ca, "Supplier delay")
    # Categories in their order, and by position within each.
    order = list(counts)
    keys = [(order.index(e["category"]), e["position"]) for e in listing["exceptions"]]
    assert keys == sorted(keys)
    # A period before all this lists none of it.
    with app.acting_as("mhernandez", PASSWORD):
        empty = app.reviews.trail_review("2020-01-01", "2020-12-31")
    assert empty["total"] == 0 and empty["exceptions"] == []


def test_a_signed_review_verifies_and_travels_in_bundles(store: CapaApplication,
                                                         store_target: str,
                                                         tmp_path: Path) -> None:
    signed = signed_review(store)
    with reading(store):
        record = store.load(AuditTrailReviews, TRAIL_REVIEW_REF)
    assert record.last_signed is not None
    assert record.last_signed["exceptions_sha256"] == signed["exceptions_sha256"]
    summary = verify_store(store, None, tmp_path / "none.checkpoints")["signatures"]
    assert summary["digital"] == summary["content_checked"] == 1
    done = verify_cli(store_target, tmp_path)
    assert done.returncode == 0, done.stderr
    key, log = tmp_path / "store.key", tmp_path / "store.checkpoints"
    create_store_key(key)
    log.touch()
    export_bundle(store, tmp_path / "bundle", key, log, load_private_key(key).public_key())
    lines = (tmp_path / "bundle" / "events.jsonl").read_text(encoding="utf-8").splitlines()
    assert any('"AuditTrailReviews.ReviewSigned"' in line for line in lines)
    checked = verify_bundle(tmp_path / "bundle", [], None)["signatures"]
    assert checked["digital"] == checked["content_checked"] == 1
    script = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "bundle")],
                            capture_output=True, text=True, check=False, timeout=120)
    assert script.returncode == 0 and "1 digital" in script.stdout, script.stderr


def test_an_edited_digest_breaks_the_review_signature(store: CapaApplication,
                                                      store_target: str,
                                                      tmp_path: Path) -> None:
    """Someone with database access rewrites what the review says was listed: the signature
    binds the record's content, so the folded record no longer matches it."""
    signed = signed_review(store)
    position, _, version, topic, state = review_rows(store_target)[1]
    assert topic.endswith("ReviewRecorded") and version == 2
    digest = signed["exceptions_sha256"].encode()
    assert digest in state
    query(store_target, "UPDATE stored_events SET state = ? WHERE rowid = ?",
          state.replace(digest, b"0" * 64), position)
    assert_fails_at(verify_cli(store_target, tmp_path), 3, "folded")


def test_edited_counts_break_the_review_signature(store: CapaApplication, store_target: str,
                                                  tmp_path: Path) -> None:
    signed_review(store)
    position, _, _, _, state = review_rows(store_target)[1]
    edited = re.sub(rb'"role_changes":\d+', b'"role_changes":0', state)
    assert edited != state
    query(store_target, "UPDATE stored_events SET state = ? WHERE rowid = ?", edited, position)
    assert_fails_at(verify_cli(store_target, tmp_path), 3, "folded")


def test_a_forged_review_signature_is_caught(store: CapaApplication, store_target: str,
                                             tmp_path: Path) -> None:
    signed_review(store)
    position, _, version, topic, state = review_rows(store_target)[2]
    assert topic.endswith("ReviewSigned") and version == 3
    data = json.loads(state)
    data["signature"]["signature"] = base64.b64encode(bytes(64)).decode()
    query(store_target, "UPDATE stored_events SET state = ? WHERE rowid = ?",
          json.dumps(data, separators=(",", ":")).encode(), position)
    assert_fails_at(verify_cli(store_target, tmp_path), 3, "forged")


def test_a_review_written_past_capa_in_someone_elses_name_is_caught(
        store: CapaApplication, store_target: str, tmp_path: Path) -> None:
    """With the library and the store but no password: a review 'signed' by the quality
    engineer, carrying a made-up signature."""
    from capa.app import keyring
    from capa.audit.signatures import now_iso

    token = actor_id.set(ENGINEER)
    try:
        record = AuditTrailReviews(ref=TRAIL_REVIEW_REF)
        record.record_review(start=DAY, end=DAY, counts={"amendments": 0},
                             exceptions_sha256="ab" * 32)
        record.sign({"user_id": ENGINEER, "full_name": "Jun Chen", "meaning": "review",
                     "content_sha256": record.content_digest(),
                     "signed_version": record.version, "signed_at": now_iso(),
                     "algorithm": "Ed25519",
                     "key_id": keyring.key_id(str(store.user(ENGINEER).public_key)),
                     "signature": base64.b64encode(bytes(range(64))).decode()})
        store.save(record)
    finally:
        actor_id.reset(token)
    assert_fails_at(verify_cli(store_target, tmp_path), 3, "forged")


def test_signing_needs_the_password_again(store: CapaApplication) -> None:
    before = len(event_rows_of(store))
    with store.acting_as(ENGINEER), pytest.raises(NotPermitted, match="password again"):
        store.reviews.sign_trail_review(DAY, DAY)
    assert len(event_rows_of(store)) == before


def event_rows_of(app: CapaApplication) -> list[Any]:
    return list(app.recorder.select_notifications(start=1, limit=100_000))
