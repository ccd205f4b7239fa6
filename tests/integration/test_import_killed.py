"""A `capa import` process killed with SIGKILL midway: the store opens, holds only whole batches,
and running the same import again completes it without a duplicate."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from capa.app.application import CapaApplication
from tests.support.cast import REPORTER
from tests.support.reading import reading
from tests.support.stores import Store, app, cli_env, store

__all__ = ["app", "store"]

ROWS = 6000


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_a_killed_import_completes_on_rerun(store: Store, app: CapaApplication,
                                            tmp_path: Path) -> None:
    data = tmp_path / "many.csv"
    lines = ["external_ref,title,description,source,severity"]
    lines += [f"K-{i:05d},Defect {i},Seen at inspection,process,minor" for i in range(ROWS)]
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    env = {**os.environ, **cli_env(store, REPORTER)}
    command = [sys.executable, "-m", "capa", "import", str(data)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    # Kill once the first batch is in, while later ones are still being written.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if store.rows("SELECT COUNT(*) FROM stored_events WHERE topic LIKE '%Raised'")[0][0]:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    partial = store.rows("SELECT COUNT(*) FROM stored_events WHERE topic LIKE '%Raised'")[0][0]
    assert partial % 1000 == 0 or partial == ROWS  # whole batches only
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr
    with reading(store.app()):
        refs = [v.external_ref for v in store.app().queries.list_records("nc")]
    assert len(refs) == len(set(refs)) == ROWS
