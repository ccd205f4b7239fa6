"""Printed names and token labels are one line (R9: they appear on signatures, reports and
lists): a line break, a terminal escape or a 3,000-character name is refused with one line,
exit 2, and nothing written, for a person, a service account and a token."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from capa.app.application import CapaApplication
from tests.support.backends import ADMIN, PASSWORD, cli_env, close_all, create_store, event_count

HOSTILE = ["Ada\nT9     fake-revoked  revoked 2026-01-01", "Ada \x1b[31mred\x1b[0m",
           "Ada\tLovelace", "A" * 3000]


@pytest.fixture
def store(store_target: str) -> Iterator[CapaApplication]:
    app = create_store(store_target)
    with app.acting_as(ADMIN, PASSWORD):
        app.service_accounts.add_service("mes1", full_name="MES line 1", roles=["reporter"])
    yield app
    close_all([app])


def refused(target: str, folder: Path, *args: str) -> None:
    before = event_count(target)
    done = subprocess.run([sys.executable, "-m", "capa", "--db", target, *args],
                          env=cli_env(ADMIN, CAPA_NEW_PASSWORD="a-new-users-password-1"),
                          capture_output=True, text=True, check=False, cwd=folder)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert "\x1b" not in done.stderr
    assert event_count(target) == before


@pytest.mark.parametrize("name", HOSTILE)
def test_a_name_or_label_that_is_not_one_short_line_is_refused(
        store: CapaApplication, store_target: str, tmp_path: Path, name: str) -> None:
    refused(store_target, tmp_path, "user", "add", "newbie", "--full-name", name,
            "--role", "reporter")
    refused(store_target, tmp_path, "user", "add-service", "mes2", "--name", name,
            "--role", "reporter")
    refused(store_target, tmp_path, "user", "token", "issue", "mes1", "--label", name)
