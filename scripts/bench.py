"""Performance figures of SPEC §7, each a ratio against a baseline measured in the same run.

Run with `make bench` (or `python scripts/bench.py [--only P1,P5]`). Machines are shared and noisy,
so every figure is a median of alternating runs of the measured and the baseline work.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BARE_SCRIPT = textwrap.dedent("""
    import sys
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate, event

    class Note(Aggregate):
        @event("Written")
        def __init__(self, text: str) -> None:
            self.text = text

    app = Application(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite",
                           "SQLITE_DBNAME": sys.argv[1]})
    app.save(Note(text="one event"))
""")


def alternate(measured: Callable[[], float], baseline: Callable[[], float],
              runs: int) -> tuple[float, float]:
    a, b = [], []
    for _ in range(runs):
        a.append(measured())
        b.append(baseline())
    return statistics.median(a), statistics.median(b)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_env(store: Path) -> dict[str, str]:
    from benchsupport import auth_env

    return {**os.environ, "CAPA_DB": str(store), **auth_env()}


def p1(folder: Path, runs: int) -> str:
    """One `capa nc raise` process vs a bare eventsourcing script saving one event."""
    from benchsupport import make_store

    store = make_store(folder / "p1.db")
    bare_db = folder / "bare.db"
    bare_py = folder / "bare.py"
    bare_py.write_text(BARE_SCRIPT, encoding="utf-8")
    env = bench_env(store)
    # An interactive user works from a `capa login` session; the password is then checked
    # (memory-hard, tens of ms by design) at login and at signing, not on every command.
    env["CAPA_SESSION_DIR"] = str(folder / "session")
    subprocess.run([sys.executable, "-m", "capa", "login"], env=env, check=True,
                   capture_output=True)
    env.pop("CAPA_PASSWORD")
    capa_cmd = [sys.executable, "-m", "capa", "nc", "raise", "--title", "Bench",
                "--description", "Benchmark NC", "--source", "process", "--severity", "minor"]

    def run(cmd: list[str]) -> float:
        return timed(lambda: subprocess.run(cmd, env=env, check=True, capture_output=True))

    run(capa_cmd)
    run([sys.executable, str(bare_py), str(bare_db)])  # warm the file cache for both
    capa_s, bare_s = alternate(lambda: run(capa_cmd),
                               lambda: run([sys.executable, str(bare_py), str(bare_db)]), runs)
    return (f"P1 nc raise process {capa_s * 1000:.0f} ms vs bare eventsourcing script "
            f"{bare_s * 1000:.0f} ms: {capa_s / bare_s:.2f}x (target <= 1.5x)")


def p5(folder: Path, runs: int) -> str:
    """`ca show --version N` of a 1,000-event CA vs `ca show` latest."""
    from benchsupport import long_ca

    app, ref, version = long_ca(folder / "p5.db", events=1000)
    at_version, latest = alternate(lambda: timed(lambda: app.records.show(ref, version=version)),
                                   lambda: timed(lambda: app.records.show(ref)), runs)
    return (f"P5 ca show --version {version} {at_version * 1000:.2f} ms vs latest "
            f"{latest * 1000:.2f} ms on a {1000}-event CA: {at_version / latest:.2f}x "
            f"(target <= 1.5x)")


BENCHES: dict[str, Callable[[Path, int], str]] = {"P1": p1, "P5": p5}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default=",".join(BENCHES), help="e.g. P1,P5")
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from benchsupport import compile_capa

    compile_capa()
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only.split(","):
            print(BENCHES[name.strip().upper()](Path(tmp), args.runs), flush=True)


if __name__ == "__main__":
    main()
