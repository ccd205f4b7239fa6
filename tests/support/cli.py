"""The `capa` command line run by the tests, in-process or as a real process.

    outcome = run_capa(["--json", "whoami"], env={"CAPA_USER": "mhernandez", ...}, cwd=folder)
    outcome.code, outcome.stdout, outcome.stderr, outcome.json()

`run_capa` calls `main()` as the installed `capa` does, so exit codes are those a user sees;
`env` is laid over the process environment for the run (a None value removes the variable).
`run_capa_process` runs `python -m capa` in a child process with the same environment.
`run_main` runs it in-process under pytest's monkeypatch and capsys, and requires that `main()`
ends by SystemExit.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from capa.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Outcome:
    """What a user sees: the exit code and the two output streams."""

    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """stdout as exactly one JSON document (json.loads refuses anything after it)."""
        return json.loads(self.stdout)

    def error(self) -> dict[str, Any]:
        """The --json error document on stderr."""
        document = json.loads(self.stderr)
        assert set(document) == {"error"}
        error: dict[str, Any] = document["error"]
        assert set(error) == {"code", "rule", "message"}
        return error


def run_capa(args: Sequence[str], *, env: Mapping[str, str | None], cwd: Path | None = None,
             input: str | None = None) -> Outcome:
    """`capa ARGS` in-process through `main()`, which maps errors to exit codes; in `cwd` when
    given, reading `input` at its prompts."""
    runner = CliRunner()
    with contextlib.chdir(cwd) if cwd is not None else contextlib.nullcontext(), \
            runner.isolation(input=input, env=dict(env)) as (out, err, _):
        try:
            main(list(args))
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
        else:
            code = 0
        return Outcome(code, out.getvalue().decode(), err.getvalue().decode())


def run_capa_process(args: Sequence[str], *, env: Mapping[str, str | None], cwd: Path,
                     timeout: float = 120) -> Outcome:
    """`python -m capa ARGS` as a real process in `cwd`, this checkout first on its path."""
    merged = {**os.environ, "PYTHONPATH": str(ROOT)}
    for key, value in env.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    done = subprocess.run([sys.executable, "-m", "capa", *args], capture_output=True,
                          text=True, env=merged, stdin=subprocess.DEVNULL, timeout=timeout,
                          cwd=cwd)
    return Outcome(done.returncode, done.stdout, done.stderr)


def run_main(args: Sequence[str], env: Mapping[str, str], monkeypatch: pytest.MonkeyPatch,
             capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """`capa ARGS` in-process, `env` set through `monkeypatch` and the output read by `capsys`:
    (exit code, stdout, stderr)."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SystemExit) as done:
        main(list(args))
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err
