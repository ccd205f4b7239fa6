"""`capa serve` as a real process on a free loopback port, for tests of what reaches the store
through HTTP: `with running_server(target, folder) as server: server.post(path, body, ...)`.
The access log is checked afterwards for credentials (it names requests, never a secret)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import ROOT


@dataclass
class RunningServer:
    url: str
    process: subprocess.Popen[str]

    def post(self, path: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
        request = urllib.request.Request(
            self.url + path, data=json.dumps(body).encode(), method="POST",
            headers={"Content-Type": "application/json", **headers})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_server(target: str, folder: Path,
                   hidden: Sequence[str] = ()) -> Iterator[RunningServer]:
    """`capa --db TARGET serve` until the block ends; `hidden` must not be in its log."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPA_")}
    env["PYTHONPATH"] = str(ROOT)
    (folder / "server").mkdir(exist_ok=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "capa", "--db", target, "serve", "--port", str(port)],
        cwd=folder / "server", env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url + "/health", timeout=2):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.stdout.read() if process.stdout else ""
                pytest.fail(f"capa serve did not start: {output}")
            time.sleep(0.2)
    try:
        yield RunningServer(url, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
    log = process.stdout.read() if process.stdout else ""
    assert "Bearer " not in log and "Basic " not in log
    for secret in hidden:
        assert secret not in log
