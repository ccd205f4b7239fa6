"""`capa serve` as a real uvicorn process on a free loopback port, on both back ends, and the
command line as its client (SPEC §11): the API's refusals are the §3 error object with the
mapped HTTP status and write nothing; hostile bodies never give a 500; the CLI through the
server prints what it prints on the store, with the same exit codes, and the client machine
keeps no secret but its session token."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from capa.server.operations import offered
from tests.support.backends import (
    ADMIN,
    ENGINEER,
    PASSWORD,
    REPORTER,
    close_all,
    create_store,
    event_count,
)
from tests.support.cast import OWNER
from tests.support.cli import run_capa
from tests.support.server import Server, serving
from tests.support.server import free_port as _free_port


@pytest.fixture
def server(store_target: str, tmp_path: Path) -> Iterator[Server]:
    close_all([create_store(store_target)])
    with serving(store_target, tmp_path) as running:
        yield running


# -- the API itself ---------------------------------------------------------------------------


def test_health_is_open_and_openapi_lists_every_operation(server: Server) -> None:
    assert server.get("/health") == (200, {"status": "ok", "version": __import__("capa")
                                           .__version__})
    status, spec = server.get("/openapi.json")
    assert status == 200
    paths = set(spec["paths"])
    wanted = {op.path for op in offered()}
    assert wanted <= paths and len(wanted) >= 40
    assert "/v1/corrective_actions/verify_ca" in paths and "/v1/identity/initialise" not in paths


def test_every_refusal_is_the_error_object_with_its_status_and_writes_nothing(
        server: Server) -> None:
    raise_nc = {"title": "Burr", "description": "Seen", "source": "supplier",
                "severity": "minor"}
    cases = [
        ({}, None, PASSWORD, 401, 4),                                   # nobody acting
        ({}, REPORTER, "wrong-password-123", 401, 4),                   # wrong password
        ({**raise_nc, "source": "moon"}, REPORTER, PASSWORD, 422, 2),   # invalid input
        ({**raise_nc, "title": 7}, REPORTER, PASSWORD, 422, 2),         # wrong type
        ({**raise_nc, "extra": 1}, REPORTER, PASSWORD, 422, 2),         # unknown field
    ]
    before = event_count(server.target)
    for body, user, password, status, code in cases:
        got, error = server.post("/v1/nonconformities/raise_nc", body, user=user,
                                 password=password)
        assert (got, error["error"]["code"]) == (status, code), (body, error)
        assert error["error"]["message"]
    # not permitted (a reporter assesses), a rule (R7), not found
    ok, raised = server.post("/v1/nonconformities/raise_nc", raise_nc, user=REPORTER)
    assert ok == 200 and raised["status"] == "open"
    before = event_count(server.target)
    got, error = server.post("/v1/nonconformities/assess_nc",
                             {"ref": raised["id"], "impact": 2, "likelihood": 2,
                              "capa_required": True}, user=REPORTER)
    assert (got, error["error"]["code"]) == (403, 4)
    got, error = server.post("/v1/nonconformities/close_nc", {"ref": raised["id"]}, user=ENGINEER)
    assert (got, error["error"]["code"], error["error"]["rule"]) == (409, 1, "R7")
    got, error = server.post("/v1/records/show", {"ref": "NC-2026-0999"}, user=ENGINEER)
    assert (got, error["error"]["code"]) == (404, 3)
    assert event_count(server.target) == before


HOSTILE: list[Any] = [None, [], "x", 5, {"ref": 5}, {"ref": "NC-2026-0001", "version": "x"},
                      {"ref": "\x00\x1b[2J" * 50}, {"ref": "../../etc/passwd"},
                      {"evidence": [{"name": "../x", "content_b64": "!!"}]},
                      {"title": "x" * 30000, "description": "d", "source": "process",
                       "severity": "minor"}]


def test_hostile_bodies_never_give_a_server_error(server: Server) -> None:
    status, opened = server.post("/v1/identity/login", {"user": ENGINEER, "password": PASSWORD})
    assert status == 200
    bearer = {"Authorization": f"Bearer {ENGINEER}:{opened['token']}"}
    before = event_count(server.target)
    for op in offered():
        if op.service == "identity" and op.method in ("login", "authenticate", "logout"):
            continue  # wrong passwords would lock the account: covered above
        for body in HOSTILE:
            status, answer = server.post(op.path, body, headers=bearer)
            assert status < 500, (op.path, body, answer)
            if status >= 400:
                assert set(answer["error"]) >= {"code", "message"}, (op.path, answer)
        status, answer = server.post(op.path, None, headers=bearer, raw=b"{not json")
        assert status == 422 and answer["error"]["code"] == 2, (op.path, answer)
    assert event_count(server.target) == before


def test_a_body_over_the_limit_is_refused_before_it_is_read(server: Server) -> None:
    status, answer = server.post("/v1/identity/whoami", None, user=ENGINEER,
                                 headers={"Content-Length": str(40 * 1024 * 1024)},
                                 raw=b"{}")
    assert status == 413 and answer["error"]["code"] == 2


# -- the command line as a client -------------------------------------------------------------


def test_the_cli_through_the_server_runs_the_lifecycle_with_the_same_output(
        server: Server, tmp_path: Path) -> None:
    raised = server.cli("--json", "nc", "raise", "--title", "Cracked housing", "--description",
                        "Hairline crack", "--source", "customer-complaint", "--severity",
                        "major", user=REPORTER)
    assert raised.code == 0, raised.stderr
    nc = raised.json()["id"]
    steps = [
        (ENGINEER, ("nc", "assess", nc, "--impact", "4", "--likelihood", "3",
                    "--capa-required")),
        (ENGINEER, ("ca", "open", "--title", "Housing cracks", "--problem", "Cracks",
                    "--owner", OWNER, "--nc", nc)),
    ]
    for user, args in steps:
        done = server.cli("--json", *args, user=user)
        assert done.code == 0, done.stderr
    ca = done.json()["id"]
    evidence = tmp_path / "work-order.txt"
    evidence.write_text("WO-4471 done", encoding="utf-8")
    for user, args in [
        (OWNER, ("ca", "investigate", ca, "--method", "ishikawa", "--root-cause", "Worn gate",
                 "--category", "machine")),
        (OWNER, ("ca", "plan", ca, "--action", "Replace gate", "--assignee", OWNER, "--due",
                 "2099-01-01", "--type", "corrective")),
        (ADMIN, ("ca", "approve", ca)),
        (OWNER, ("ca", "complete", ca, "A1", "--note", "Replaced", "--evidence",
                 str(evidence))),
        (ENGINEER, ("ca", "verify", ca, "--effective", "--note", "3 lots clean")),
        (ADMIN, ("ca", "close", ca)),
    ]:
        done = server.cli("--json", *args, user=user)
        assert done.code == 0, (args, done.stderr)
    assert done.json()["closed_ncs"] == [nc]
    # What the client prints is what the store itself prints.
    through = server.cli("ca", "show", ca)
    local = run_capa(["--db", server.target, "ca", "show", ca],
                     env={"CAPA_USER": ADMIN, "CAPA_PASSWORD": PASSWORD, "CAPA_DB": None,
                          "CAPA_SESSION_DIR": str(tmp_path / "local")}, cwd=tmp_path)
    assert through.code == local.code == 0
    assert through.stdout == local.stdout
    [kept] = server.cli("--json", "evidence", "list", ca).json()
    assert kept["name"] == "work-order.txt"
    assert kept["sha256"] == __import__("hashlib").sha256(b"WO-4471 done").hexdigest()
    # Refusals keep their exit codes and write nothing.
    before = event_count(server.target)
    assert server.cli("ca", "close", ca).code == 1
    assert server.cli("nc", "assess", nc, "--impact", "9", "--likelihood", "1",
                      "--capa-required", user=ENGINEER).code == 2
    assert server.cli("nc", "show", "NC-2026-0999").code == 3
    assert server.cli("nc", "assess", nc, "--impact", "2", "--likelihood", "2",
                      "--capa-required", user=REPORTER).code == 4
    assert event_count(server.target) == before
    # A wrong password is refused (and counted towards the lockout, as on the store).
    assert server.cli("nc", "list", password="wrong-password-1").code == 4


def test_a_session_against_the_server_keeps_only_its_token_on_the_client(
        server: Server) -> None:
    logged = server.cli("--json", "login", user=ENGINEER)
    assert logged.code == 0, logged.stderr
    client = server.folder / "client"
    files = sorted(p.relative_to(client).as_posix() for p in client.rglob("*") if p.is_file())
    assert files == ["session/session.json"]
    session = json.loads((client / "session" / "session.json").read_text(encoding="utf-8"))
    assert set(session) == {"user", "store", "token", "started_at", "target"}
    assert session["store"] == server.url and PASSWORD not in json.dumps(session)
    assert (client / "session" / "session.json").stat().st_mode & 0o777 == 0o600
    # Commands run on the session alone; a signature needs the password again (R10).
    who = server.cli("--json", "whoami", user=None, password=None)
    assert who.code == 0 and who.json()["user"] == ENGINEER
    raised = server.cli("--json", "nc", "raise", "--title", "Burr", "--description", "Seen",
                        "--source", "supplier", "--severity", "minor", user=None,
                        password=None)
    assert raised.code == 0, raised.stderr
    nc = raised.json()["id"]
    server.cli("nc", "assess", nc, "--impact", "1", "--likelihood", "1",
               "--no-capa-required", "--rationale", "Cosmetic", user=None, password=None)
    before = event_count(server.target)
    unsigned = server.cli("--json", "nc", "close", nc, user=None, password=None)
    assert unsigned.code == 4 and unsigned.error()["rule"] == "R10"
    assert event_count(server.target) == before
    signed = server.cli("--json", "nc", "close", nc, user=None)
    assert signed.code == 0, signed.stderr
    assert server.cli("logout", user=None, password=None).code == 0
    assert server.cli("whoami", user=None, password=None).code == 4


def test_a_server_that_is_down_or_a_wrong_url_is_exit_3_naming_it(server: Server) -> None:
    port = _free_port()
    down = server.cli("nc", "list", CAPA_DB=f"http://127.0.0.1:{port}")
    assert down.code == 3 and f"http://127.0.0.1:{port}" in down.stderr
    wrong = server.cli("nc", "list", CAPA_DB=server.url + "/nowhere")
    assert wrong.code == 3
    local_only = server.cli("audit", "verify")
    assert local_only.code == 2 and "not through a server" in local_only.stderr


def test_eight_concurrent_clients_get_unique_numbers_and_the_log_verifies(
        server: Server, tmp_path: Path) -> None:
    import concurrent.futures

    status, opened = server.post("/v1/identity/login", {"user": REPORTER, "password": PASSWORD})
    assert status == 200
    bearer = {"Authorization": f"Bearer {REPORTER}:{opened['token']}"}
    before = event_count(server.target)

    def raise_one(i: int) -> tuple[int, Any]:
        return server.post("/v1/nonconformities/raise_nc",
                           {"title": f"Burr {i}", "description": "Seen at goods-in",
                            "source": "supplier", "severity": "minor"}, headers=bearer)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(raise_one, range(40)))
    assert [s for s, _ in answers] == [200] * 40, [a for s, a in answers if s != 200][:3]
    ids = sorted(a["id"] for _, a in answers)
    assert len(set(ids)) == 40
    assert event_count(server.target) == before + 40
    listed = run_capa(["--db", server.target, "--json", "nc", "list"],
                      env={"CAPA_USER": ADMIN, "CAPA_PASSWORD": PASSWORD, "CAPA_DB": None,
                           "CAPA_SESSION_DIR": str(tmp_path / "local")}, cwd=tmp_path)
    assert {r["id"] for r in listed.json()} >= set(ids)


def test_the_mail_server_is_the_servers_own_setting(server: Server) -> None:
    status, answer = server.post("/v1/notifications/notify",
                                 {"dry_run": False, "smtp_url": "smtp://attacker.example:25"},
                                 user=ADMIN)
    assert status == 422 and answer["error"]["code"] == 2
    status, answer = server.post("/v1/notifications/notify", {"dry_run": False}, user=ADMIN)
    assert status == 422 and "CAPA_SMTP_URL" in answer["error"]["message"]
    status, answer = server.post("/v1/notifications/notify", {"dry_run": True}, user=ADMIN)
    assert status == 200 and answer["dry_run"] is True


@pytest.mark.sqlite_only("the schedule does not depend on the back end")
def test_the_server_sends_the_due_reminders_on_its_schedule_once(store_target: str,
                                                                   tmp_path: Path) -> None:
    from tests.support.mailbox import running_mailbox

    app = create_store(store_target)
    with app.acting_as(ADMIN, PASSWORD):
        app.identity.set_email(ENGINEER, "jchen@northwind.example")
    with app.acting_as(REPORTER, PASSWORD):
        nc = app.nonconformities.raise_nc(title="Burr", description="Seen", source="supplier",
                                          severity="minor").id
    with app.acting_as(ENGINEER, PASSWORD):
        app.nonconformities.assess_nc(nc, impact=3, likelihood=3, capa_required=True)
        ca = app.corrective_actions.open_ca(title="Burrs", problem="Burrs on flange",
                                            owner=OWNER, ncs=[nc]).id
    with app.acting_as(OWNER, PASSWORD):
        app.corrective_actions.investigate_ca(ca, method="other", root_cause="Worn die",
                                              category="machine")
        app.corrective_actions.plan_ca(ca, action="Replace die", assignee=OWNER,
                                       due="2099-01-01", action_type="corrective")
    with app.acting_as(ADMIN, PASSWORD):
        app.corrective_actions.approve_ca(ca)
    with app.acting_as(OWNER, PASSWORD):
        app.corrective_actions.complete_action(ca, "A1", note="Replaced")
    close_all([app])
    with running_mailbox() as box, serving(store_target, tmp_path, "--notify-every", "0.02",
                                           "--notify-as", ADMIN, CAPA_PASSWORD=PASSWORD,
                                           CAPA_SMTP_URL=box.url):
        deadline = time.monotonic() + 30
        while not box.to("jchen@northwind.example") and time.monotonic() < deadline:
            time.sleep(0.3)
        [message] = box.to("jchen@northwind.example")
        assert ca in message.subject + message.body
        time.sleep(4)  # several more rounds
        assert len(box.to("jchen@northwind.example")) == 1, "sent once per threshold"
