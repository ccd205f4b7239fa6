"""`capa serve` as a real uvicorn process on a free loopback port, and a small HTTP client for it
(SPEC §11), shared by the server's integration tests."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.backends import ADMIN, PASSWORD
from tests.support.cli import ROOT, Outcome, run_capa


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    url: str
    target: str
    process: subprocess.Popen[str]
    folder: Path

    def post(self, path: str, body: Any, *, user: str | None = None,
             password: str = PASSWORD, headers: dict[str, str] | None = None,
             raw: bytes | None = None) -> tuple[int, Any]:
        sent = {"Content-Type": "application/json", **(headers or {})}
        if user is not None:
            sent["Authorization"] = "Basic " + base64.b64encode(
                f"{user}:{password}".encode()).decode()
        data = raw if raw is not None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, headers=sent,
                                         method="POST")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def get(self, path: str) -> tuple[int, Any]:
        with urllib.request.urlopen(self.url + path, timeout=30) as response:
            return response.status, json.loads(response.read())

    def cli(self, *args: str, user: str | None = ADMIN, password: str | None = PASSWORD,
            **env: str | None) -> Outcome:
        """`capa --db URL ARGS` in-process, as a client machine with no store at hand."""
        environment: dict[str, str | None] = {
            "CAPA_DB": self.url, "CAPA_USER": user, "CAPA_PASSWORD": password,
            "CAPA_SESSION_DIR": str(self.folder / "client" / "session"), "CAPA_KEY": None,
            "CAPA_CHECKPOINTS": None, "CAPA_DEBUG": None, **env}
        (self.folder / "client").mkdir(exist_ok=True)
        outcome = run_capa(args, env=environment, cwd=self.folder / "client")
        assert "Traceback" not in outcome.stdout + outcome.stderr
        return outcome


def start(target: str, folder: Path, *options: str, port: int | None = None,
          **extra_env: str) -> Server:
    """`capa --db TARGET serve OPTIONS` as a real process, once /health answers."""
    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPA_")}
    env.update(PYTHONPATH=str(ROOT), **extra_env)
    (folder / "server").mkdir(exist_ok=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "capa", "--db", target, "serve", "--port", str(port), *options],
        cwd=folder / "server", env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url + "/health", timeout=2):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                kill(Server(url, target, process, folder))
                output = process.stdout.read() if process.stdout else ""
                pytest.fail(f"capa serve did not start: {output}")
            time.sleep(0.2)
    return Server(url, target, process, folder)


def stop(server: Server) -> str:
    """End the server as a service manager does (SIGTERM); its log."""
    os.killpg(server.process.pid, signal.SIGTERM)
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        kill(server)
    return server.process.stdout.read() if server.process.stdout else ""


def kill(server: Server) -> None:
    """SIGKILL the server and every worker it started, mid-whatever they are doing."""
    with suppress(ProcessLookupError):
        os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=20)


@contextmanager
def serving(target: str, folder: Path, *options: str, hidden: Sequence[str] = (),
            **extra_env: str) -> Iterator[Server]:
    """`capa --db TARGET serve OPTIONS` as a real process on a free port, until the block ends;
    neither a password, nor credentials, nor any of `hidden` may be in its log."""
    server = start(target, folder, *options, **extra_env)
    try:
        yield server
    finally:
        log = stop(server)
    # The access log names requests, never a password or a token.
    assert PASSWORD not in log
    assert "Basic " not in log and "Bearer " not in log
    for secret in hidden:
        assert secret not in log
