"""Service accounts' API tokens through a real `capa serve` (SPEC §11), on both back ends: a
machine raises an NC with `Authorization: Bearer capa_…` and through the command line as a
client (`CAPA_TOKEN`); a revoked token, an unknown one and a signature attempt are refused
with the §3 error object and write nothing; the token is in no export and nowhere in the
store's bytes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from capa.app.application import CapaApplication
from tests.support.backends import (
    ADMIN,
    ENGINEER,
    PASSWORD,
    close_all,
    create_store,
    event_count,
    stored_bytes,
)
from tests.support.cli import run_capa
from tests.support.server import Server, serving

SERVICE = "erp-complaints"
RAISE = {"title": "Customer reports cracked lens", "description": "Complaint 88123",
         "source": "customer-complaint", "severity": "major", "external_ref": "CC-88123"}


@pytest.fixture
def tokens(store_target: str) -> Iterator[dict[str, str]]:
    """A store with a quality service account holding two tokens, the first revoked."""
    app: CapaApplication = create_store(store_target)
    try:
        with app.acting_as(ADMIN, PASSWORD):
            app.service_accounts.add_service(SERVICE, full_name="Complaint system",
                                             roles=["quality"])
            first = app.service_accounts.issue_token(SERVICE, label="old")["token"]
            live = app.service_accounts.issue_token(SERVICE, label="erp")["token"]
            app.service_accounts.revoke_token(SERVICE, "T1", reason="Rotated")
        yield {"revoked": first, "live": live}
    finally:
        close_all([app])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def client(server: Server, folder: Path, *args: str, token: str) -> tuple[int, str, str]:
    (folder / "client").mkdir(exist_ok=True)
    outcome = run_capa(["--json", *args], cwd=folder / "client", env={
        "CAPA_DB": server.url, "CAPA_TOKEN": token, "CAPA_USER": None, "CAPA_PASSWORD": None,
        "CAPA_SESSION_DIR": str(folder / "client" / "session"), "CAPA_KEY": None,
        "CAPA_CHECKPOINTS": None, "CAPA_DEBUG": None})
    assert "Traceback" not in outcome.stdout + outcome.stderr
    return outcome.code, outcome.stdout, outcome.stderr


def test_a_machine_raises_ncs_with_its_token_and_nothing_else_gets_in(
        tokens: dict[str, str], store_target: str, tmp_path: Path) -> None:
    live, revoked = tokens["live"], tokens["revoked"]
    with serving(store_target, tmp_path, hidden=[live, revoked]) as server:
        status, raised = server.post("/v1/nonconformities/raise_nc", RAISE,
                                     headers=bearer(live))
        assert status == 200 and raised["status"] == "open", raised
        code, out, err = client(server, tmp_path, "nc", "raise", "--title", "Torn label",
                                "--description", "Complaint 88124", "--source",
                                "customer-complaint", "--severity", "minor", token=live)
        assert code == 0, err
        second = json.loads(out)["id"]
        code, out, _ = client(server, tmp_path, "nc", "show", second, token=live)
        assert code == 0 and json.loads(out)["reported_by"] == SERVICE
        # Without --json, as a script on the line's PC would run it.
        (tmp_path / "client").mkdir(exist_ok=True)
        human = run_capa(["nc", "raise", "--title", "Torn label", "--description", "Again",
                          "--source", "customer-complaint", "--severity", "minor"],
                         cwd=tmp_path / "client",
                         env={"CAPA_DB": server.url, "CAPA_TOKEN": live, "CAPA_USER": None,
                              "CAPA_PASSWORD": None, "CAPA_DEBUG": None,
                              "CAPA_SESSION_DIR": str(tmp_path / "client" / "session")})
        assert human.code == 0, human.stderr
        assert human.stdout.startswith("NC-") and ": open (version 1)" in human.stdout

        before = event_count(store_target)
        for token, words in [(revoked, "revoked"), (live[:-1] + "0", "unknown API token"),
                             ("capa_nobody_" + "0" * 64, "unknown API token")]:
            status, error = server.post("/v1/nonconformities/raise_nc", RAISE,
                                        headers=bearer(token))
            assert status == 401 and error["error"]["code"] == 4, error
            assert words in error["error"]["message"] and error["error"]["rule"] is None
        code, _, err = client(server, tmp_path, "nc", "list", token=revoked)
        assert code == 4 and "revoked" in err
        # A service account never signs: closing an NC (a signature) is refused, one line.
        status, error = server.post("/v1/nonconformities/assess_nc",
                                    {"ref": raised["id"], "impact": 1, "likelihood": 1,
                                     "capa_required": False, "rationale": "Isolated"},
                                    headers=bearer(live))
        assert status == 200
        before = event_count(store_target)
        status, error = server.post("/v1/nonconformities/close_nc", {"ref": raised["id"]},
                                    headers={**bearer(live), "X-Capa-Password": PASSWORD})
        assert status == 403 and "cannot sign" in error["error"]["message"]
        # Nor does a token let anyone manage accounts.
        status, error = server.post("/v1/service_accounts/issue_token", {"user": SERVICE},
                                    headers=bearer(live))
        assert status == 403 and error["error"]["code"] == 4
        assert event_count(store_target) == before

    exported = run_capa(["--db", store_target, "export", "--format", "jsonl"], env={
        "CAPA_USER": ENGINEER, "CAPA_PASSWORD": PASSWORD, "CAPA_TOKEN": None,
        "CAPA_SESSION_DIR": str(tmp_path / "s")}, cwd=tmp_path)
    assert exported.code == 0 and SERVICE in exported.stdout
    held = stored_bytes(store_target)
    for token in (live, revoked):
        secret = token.rsplit("_", 1)[1]
        assert secret not in exported.stdout and secret.encode() not in held
